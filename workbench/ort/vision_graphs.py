"""The three ONNX graphs of a vision-language model (Glm4v), as onnxruntime-genai lays VLMs out, built from a
model's weights with its quantized codes packed as they are; `vision_language(model)` runs them in memory.

- ``text.onnx``: the language model and lm_head on ``inputs_embeds`` with 3-axis M-RoPE ``position_ids``
  and the KV cache, exported by torch.onnx's dynamo exporter from the dequantized model (dynamic
  batch, sequence and past); the quantized language-model layers' codes are then packed into
  MatMulNBits (`pack.pack_plain`), as for text models.
- ``embedding.onnx``: token embeddings with the image features written at the ``<|image|>`` tokens
  (dynamo, dynamic lengths).
- ``vision.onnx``: the vision tower at one screenshot patch grid (a phone's screenshots have one
  resolution). transformers' vision attention splits by data-dependent lengths, which the dynamo
  exporter cannot trace, so this graph is traced at that grid by the TorchScript exporter; its weight
  MatMuls are renamed after their modules, so with ``quant.scope`` "all" the tower's codes are packed
  into MatMulNBits too.
`workbench.ort.vision.OrtVisionLanguage` runs the folder.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn
from transformers import DynamicCache

from .contract import EXTERNAL_DATA_BYTES, OPSET, DecoderShape
from .graph import ACCURACY_LEVEL, initializer_bytes
from .nbits import is_quantized
from .pack import dequantized, pack_plain, tidy
from .vision import EMBEDDING_FILE, TEXT_FILE, VISION_FILE, OrtVisionLanguage

GRAPH_FILES = (VISION_FILE, EMBEDDING_FILE, TEXT_FILE)
# The vision graph's MatMulNBits compute in float32 (accuracy_level 1), not with int8 activations (4, the
# text decoder's): with int8 activations the random tiny tower's image features moved by 2.0% of their scale
# (measured, int4 g32 RTN, scope all), 20x the features' bound, and greedy actions followed them.
VISION_ACCURACY_LEVEL = 1


class VisionGraph(nn.Module):
    """The vision tower at one patch grid: pixel_values -> image features (image tokens, hidden)."""

    def __init__(self, model: nn.Module, grid: torch.Tensor):
        super().__init__()
        self.visual = model.model.visual
        self.register_buffer("grid", grid, persistent=False)

    def forward(self, pixel_values):
        return self.visual(pixel_values, grid_thw=self.grid).pooler_output


class EmbeddingGraph(nn.Module):
    """input_ids (B, T), image_features (N, hidden) -> inputs_embeds, the i-th <|image|> token taking row i."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.embed = model.model.language_model.embed_tokens
        self.image_token_id = int(model.config.image_token_id)

    def forward(self, input_ids, image_features):
        embeds = self.embed(input_ids)
        mask = input_ids == self.image_token_id
        index = (torch.cumsum(mask.reshape(-1).long(), 0) - 1).clamp(min=0)
        picked = image_features[index].reshape(embeds.shape).to(embeds.dtype)
        return torch.where(mask[..., None], picked, embeds)


class TextGraph(nn.Module):
    """The language model and lm_head on inputs_embeds, M-RoPE positions (3, B, T) and a flat KV cache."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model  # named `model`, so the graph's MatMuls are named as model.named_modules() names them
        self.num_layers = DecoderShape.of(model).num_layers

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.num_layers)],
                             config=self.model.config.get_text_config())
        out = self.model.model.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                              position_ids=position_ids, cache=cache, use_cache=True)
        present = []
        for layer in cache.layers:
            present += [layer.keys, layer.values]
        return (self.model.lm_head(out.last_hidden_state), *present)


def name_vision_matmuls(path: Path, model: nn.Module) -> int:
    """Rename the vision graph's weight MatMuls after their modules (``/visual/blocks.0/attn/qkv/MatMul`` ->
    ``model.visual.blocks.0.attn.qkv``), as the dynamo graphs are named, so `pack_plain` finds them."""
    proto = onnx.load(str(path))
    modules = {n for n, m in model.named_modules() if n.startswith("model.visual.")}
    count = 0
    for node in proto.graph.node:
        if node.op_type == "MatMul" and node.name.startswith("/visual/") and node.name.endswith("/MatMul"):
            name = "model." + node.name[1:-len("/MatMul")].replace("/", ".")
            if name in modules:
                node.name, count = name, count + 1
    onnx.save(proto, str(path))
    return count


def pack_graphs(folder: Path, qmodel: nn.Module, accuracy_level: int = ACCURACY_LEVEL) -> int:
    """Pack the quantized layers' codes into the text graph (MatMulNBits at `accuracy_level`) and, where the
    vision tower is quantized (scope "all"), into the vision graph (at VISION_ACCURACY_LEVEL); returns how many."""
    quantized = [n for n, m in qmodel.named_modules() if is_quantized(m)]
    if not quantized:
        return 0
    name_vision_matmuls(folder / VISION_FILE, qmodel)
    packed = pack_plain(str(folder / TEXT_FILE), qmodel, accuracy_level, within=("model.language_model.", "lm_head"))
    if any(n.startswith("model.visual.") for n in quantized):
        packed += pack_plain(str(folder / VISION_FILE), qmodel, VISION_ACCURACY_LEVEL, within=("model.visual.",))
    return packed


def _kv_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


def _quiet_export(*args, **kwargs):
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return torch.onnx.export(*args, **kwargs)


def write_graphs(float_model: nn.Module, folder: Path, grid: torch.Tensor, pixel_values: torch.Tensor) -> None:
    """Write vision.onnx, embedding.onnx and text.onnx of a float Glm4v into `folder` (checked by onnx.checker)."""
    shape = DecoderShape.of(float_model)
    float_model = float_model.eval()
    _quiet_export(VisionGraph(float_model, grid).eval(), (pixel_values,), str(folder / VISION_FILE), dynamo=False,
                  opset_version=OPSET, input_names=["pixel_values"], output_names=["image_features"])
    batch, seq, tokens = torch.export.Dim("batch"), torch.export.Dim("sequence"), torch.export.Dim("image_tokens")
    ids = torch.randint(0, shape.vocab_size, (2, 3))
    program = _quiet_export(EmbeddingGraph(float_model).eval(), (ids, torch.randn(4, shape.hidden_size)),
                            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "image_features": {0: tokens}},
                            input_names=["input_ids", "image_features"], output_names=["inputs_embeds"],
                            opset_version=OPSET, dynamo=True)
    tidy(program.model)
    program.save(str(folder / EMBEDDING_FILE))
    past, total = torch.export.Dim("past_sequence"), torch.export.Dim("total_sequence")
    kv = [torch.randn(2, shape.num_kv_heads, 5, shape.head_dim) for _ in range(2 * shape.num_layers)]
    example = (torch.randn(2, 3, shape.hidden_size), torch.ones(2, 8, dtype=torch.long),
               torch.arange(5, 8).expand(3, 2, 3).contiguous(), *kv)
    dynamic = {"inputs_embeds": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: total},
               "position_ids": {1: batch, 2: seq}, "past": tuple({0: batch, 2: past} for _ in kv)}
    program = _quiet_export(TextGraph(float_model).eval(), example, dynamic_shapes=dynamic,
                            input_names=["inputs_embeds", "attention_mask", "position_ids",
                                         *_kv_names(shape.num_layers, "past_key_values")],
                            output_names=["logits", *_kv_names(shape.num_layers, "present")],
                            opset_version=OPSET, dynamo=True)
    tidy(program.model)
    large = sum(p.numel() * p.element_size() for p in float_model.parameters()) > EXTERNAL_DATA_BYTES
    program.save(str(folder / TEXT_FILE), external_data=large)
    for name in (VISION_FILE, EMBEDDING_FILE, TEXT_FILE):
        onnx.checker.check_model(str(folder / name), full_check=True)


def vision_language(model: nn.Module, grid: torch.Tensor, pixel_values: torch.Tensor,
                    threads: int | None = None) -> tuple[OrtVisionLanguage, dict]:
    """The three graphs of `model` (its quantized codes packed, as the export packs them) in ONNX Runtime sessions.

    Built in a temporary folder that is removed once the sessions hold the graphs.
    Returns:
        (OrtVisionLanguage, {file name: bytes its weights store}).
    """
    with tempfile.TemporaryDirectory(prefix="workbench-vl-") as tmp:
        folder = Path(tmp)
        write_graphs(dequantized(model), folder, grid, pixel_values)
        pack_graphs(folder, model)
        sizes = {f: initializer_bytes(onnx.load(str(folder / f))) for f in GRAPH_FILES}
        return OrtVisionLanguage(folder, threads), sizes
