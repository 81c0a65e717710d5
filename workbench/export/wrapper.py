"""The plain ONNX graph: a decoder with a flat KV cache, exported by torch.onnx's dynamo exporter.

A transformers ``DynamicCache`` cannot be an export input, so `FlatKV` wraps the causal LM: it takes
the past as flat tensors ``past_key_values.{i}.key/value`` (B, kv_heads, past, head_dim), builds the
cache inside ``forward`` and returns ``logits`` (B, T, V) plus ``present.{i}.key/value``
(B, kv_heads, past + T, head_dim). Prefill passes past tensors with 0 positions.

`export_plain` exports at opset 18 with dynamic batch, sequence and past lengths (example sizes
> 1 so that no dimension is specialised), renames each MatMul after the module it computes
(``model.layers.0.self_attn.q_proj``: the quantizers' exclusion lists and the manifest use these
names), drops the exporter's stack-trace metadata (it holds local paths) and runs
``onnx.checker`` with the full check. The legacy TorchScript exporter (``dynamo=False``) builds a
wrong graph for GLM's interleaved rotary and is not used.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import os
import warnings

import onnx
import torch
from torch import nn
from transformers import DynamicCache

from ..ort.contract import EXTERNAL_DATA_BYTES, OPSET, DecoderShape, input_names, output_names
from ..ort.pack import tidy



def cache_kwarg(model: nn.Module) -> str:
    """The forward keyword for the KV cache: ``cache`` (transformers >= 5.24) or ``past_key_values``.

    Args:
        model: a transformers causal LM.
    Returns:
        The keyword name.
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class FlatKV(nn.Module):
    """A causal LM with the KV cache as flat tensors in and out (what the ONNX graph computes)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.num_layers = DecoderShape.of(model).num_layers
        self.cache_kwarg = cache_kwarg(model)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        # input_ids, position_ids (B, T) int64; attention_mask (B, past + T) int64;
        # past: 2 * layers tensors (B, kv_heads, past, head_dim)
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.num_layers)],
                             config=self.model.config)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=True, **{self.cache_kwarg: cache})
        present = []
        for layer in cache.layers:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def _example_inputs(shape: DecoderShape, batch: int = 2, seq: int = 3, past: int = 5):
    ids = torch.randint(0, shape.vocab_size, (batch, seq))
    mask = torch.ones(batch, past + seq, dtype=torch.long)
    pos = torch.arange(past, past + seq).expand(batch, seq).contiguous()
    kv = [torch.randn(batch, shape.num_kv_heads, past, shape.head_dim) for _ in range(2 * shape.num_layers)]
    return (ids, mask, pos, *kv)


def export_plain(model: nn.Module, path: str | os.PathLike, *, verbose: bool = False) -> DecoderShape:
    """Export a float GLM-family causal LM to an ONNX decoder with KV cache (see module doc).

    Args:
        model: the float model (pruned or not; quantized PackedLinear layers do not export).
        path: where to write the .onnx file (weights go to ``<name>.data`` beside it when large).
        verbose: show the exporter's progress lines.
    Returns:
        The DecoderShape of the exported graph.
    Raises:
        ValueError: the model holds layers the exporter cannot translate (e.g. packed quantized ones).
    """
    from ..quant import BF16Linear, PackedLinear

    packed = [n for n, m in model.named_modules() if isinstance(m, (PackedLinear, BF16Linear))]
    if packed:
        raise ValueError(f"export the float model: {packed[0]} is a quantized {type(model.get_submodule(packed[0])).__name__}; "
                         "the ONNX path quantizes with ONNX Runtime after export")
    shape = DecoderShape.of(model)
    batch, seq, past = torch.export.Dim("batch"), torch.export.Dim("sequence"), torch.export.Dim("past_sequence")
    total = torch.export.Dim("total_sequence")
    dynamic = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: total},
               "position_ids": {0: batch, 1: seq},
               "past": tuple({0: batch, 2: past} for _ in range(2 * shape.num_layers))}
    wrapper = FlatKV(model).eval()
    sink = io.StringIO()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.simplefilter("ignore")
        if not verbose:
            stack.enter_context(contextlib.redirect_stdout(sink))
        program = torch.onnx.export(
            wrapper, _example_inputs(shape), dynamic_shapes=dynamic, input_names=input_names(shape.num_layers),
            output_names=output_names(shape.num_layers), opset_version=OPSET, dynamo=True, verbose=verbose)
    tidy(program.model)
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > EXTERNAL_DATA_BYTES
    if os.path.exists(os.fspath(path) + ".data"):
        os.remove(os.fspath(path) + ".data")
    program.save(path, external_data=large)
    onnx.checker.check_model(os.fspath(path), full_check=True)
    return shape
