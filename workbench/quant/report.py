"""What a weight quantizer reports: per-layer SQNR, bytes before/after and the kernel that runs.

Works on every layer kind the quant knob produces: `nn.Linear` (float), `PackedLinear`,
`BF16Linear` and torch.ao's dynamic int8 `Linear` (W8A8).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..select import default_filter, selected_linears
from .grid import sqnr_db


def is_dynamic_int8(module: nn.Module) -> bool:
    """Whether `module` is one of torch.ao's dynamic int8 modules (W8A8)."""
    return type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The (out, in) float32 weight a layer computes with (dequantized where stored quantized)."""
    if is_dynamic_int8(module):
        return module.weight().dequantize().float()  # qint8 per-channel -> float
    if hasattr(module, "dequantize"):
        return module.dequantize(torch.float32)  # PackedLinear
    return module.weight.detach().float()


def kernel_of(module: nn.Module) -> str:
    """Which matmul path a layer runs: "fp32", "bf16", "dequant-fp32" or "torch-int8-dynamic"."""
    if is_dynamic_int8(module):
        return "torch-int8-dynamic"
    return getattr(module, "kernel", "fp32" if isinstance(module, nn.Linear) else type(module).__name__)


def module_bytes(module: nn.Module) -> int:
    """Bytes of one layer's own stored state (parameters and persistent buffers, packed as stored).

    torch.ao's dynamic int8 Linear keeps its weight inside packed params: counted as its int8 values,
    per-channel scales and zero points, and the bias.
    """
    if is_dynamic_int8(module):
        w, b = module._packed_params._weight_bias()
        total = w.numel() * w.element_size() + (0 if b is None else b.numel() * b.element_size())
        if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            total += sum(t.numel() * t.element_size()
                         for t in (w.q_per_channel_scales(), w.q_per_channel_zero_points()))
        return total
    return sum(t.numel() * t.element_size()
               for t in module.state_dict(keep_vars=True).values() if isinstance(t, torch.Tensor))


@dataclass(frozen=True)
class LayerQuant:
    """One quantized layer: grid, kernel, SQNR (dB) of weight and of output on a random input, bytes."""

    name: str
    kernel: str
    bits: int
    group_size: int  # effective (0: per output channel; -1: no grid, bf16)
    weight_sqnr_db: float
    output_sqnr_db: float
    bytes_before: int
    bytes_after: int


@dataclass(frozen=True)
class QuantReport:
    """What a quantize_ transform did, layer by layer."""

    method: str
    layers: tuple[LayerQuant, ...]

    @property
    def bytes_before(self) -> int:
        return sum(r.bytes_before for r in self.layers)

    @property
    def bytes_after(self) -> int:
        return sum(r.bytes_after for r in self.layers)

    @property
    def kernels(self) -> tuple[str, ...]:
        """Distinct kernels that run, in layer order."""
        return tuple(dict.fromkeys(r.kernel for r in self.layers))

    @property
    def sqnr_db(self) -> dict[str, float]:
        """name -> weight SQNR (dB)."""
        return {r.name: r.weight_sqnr_db for r in self.layers}

    def table(self) -> list[dict]:
        """One dict per layer (for a DataFrame or JSON)."""
        return [vars(r).copy() for r in self.layers]


@torch.no_grad()
def layer_record(name: str, before: nn.Module, after: nn.Module, bits: int, group_size: int,
                 n_tokens: int = 8, seed: int = 0) -> LayerQuant:
    """Compare a float layer with its quantized replacement.

    Args:
        name: module name.
        before: the float nn.Linear.
        after: its replacement.
        bits, group_size: the grid used (reported as given).
        n_tokens: rows of the random N(0, 1) input the outputs are compared on.
        seed: seed of that input.
    Returns:
        LayerQuant.
    """
    gen = torch.Generator().manual_seed(seed)
    w = before.weight
    x = torch.randn(n_tokens, before.in_features, generator=gen).to(w.device, w.dtype)  # (n_tokens, in), as the layer runs
    return LayerQuant(name, kernel_of(after), bits, group_size,
                      sqnr_db(before.weight, effective_weight(after)), sqnr_db(before(x), after(x)),
                      module_bytes(before), module_bytes(after))


@torch.no_grad()
def layer_sqnr(model_ref: nn.Module, model_q: nn.Module, filter_fn=default_filter) -> dict[str, float]:
    """Per-layer weight SQNR (dB) of a quantized model against its float reference.

    Args:
        model_ref: the float model.
        model_q: the quantized model (same module names).
        filter_fn: picks the layers in `model_ref` (default: decoder Linears, no lm_head).
    Returns:
        {name: SQNR in dB} in model order (inf where the weight is unchanged).
    """
    return {name: sqnr_db(m.weight, effective_weight(model_q.get_submodule(name)))
            for name, m in selected_linears(model_ref, filter_fn).items()}
