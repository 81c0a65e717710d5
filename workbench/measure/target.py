"""Latency and memory of a recipe at a deployment target's shape (GLM-Edge-1.5B, AutoGLM-Phone-9B's
text decoder), measured on ONNX Runtime on this machine, so the trade-off plot tells the deployment's truth.

The loaded model (`tiny`) says what a recipe does to accuracy; what it does to time on the phone
model depends on that model's shape. A weight's value does not change the time a MatMul takes, so
the time at the target is measured on a *random-weight* decoder of the target's shape carrying the
recipe's precision (float32, or MatMulNBits int8 / int4 with the recipe's block and symmetry) and
its structured-pruning ratios (fewer MLP channels, fewer query heads; unstructured pruning keeps the
dense shapes and so the time). The graph is the one the export writes (`workbench.ort.fused_decoder`),
built from packed random codes: no float copy of a quantized layer is ever held.

    rec = measure_target(recipe, "glm-edge-1.5b", store=ResultsStore())
    rec.decode_ms_per_token, rec.method, rec.memory_bytes_at_context

- Full depth when the graph fits `full_depth_bytes`; else the decoder is measured at two depths k < m
  and each time extrapolated linearly in depth, t(L) = t(k) + (t(m) - t(k)) / (m - k) * (L - k)
  (the record's `method` says "measured at k and m layers, linear in depth").
- Memory at the target is computed, not measured: the bytes the exported graph stores (full vocabulary
  and depth) plus the float32 KV cache at `context_tokens` (default 25,480, the context Open-AutoGLM
  serves); `memory_method` says so.
- The result is cached in the results store under a key of everything that determines the time
  (deployed shape, precision, threads, ONNX Runtime version, machine, timing settings); the context is
  not part of it (memory is recomputed for any context), so a second recipe with the same key costs nothing.
"""
from __future__ import annotations

import ctypes
import dataclasses
import gc
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

DEFAULT_CONTEXT = 25480  # tokens: the context Open-AutoGLM serves
MAX_POSITIONS = 32768  # rows of the graph's rotary caches
PARTIAL_ROTARY = 0.5
WARMUP = 1  # untimed prefill + decode runs before the timed ones
CACHE_VERSION = 1
FULL_DEPTH = "full depth"
MEMORY_METHOD = "computed from stored bytes"
_PER_CHANNEL_BLOCK = 128
_NORM_CONST_BYTES = 4 + 8 + 4  # a plain RMSNorm's constants in the graph: Pow 2 (f32), axes (i64), eps (f32)
_MASK_CONST_BYTES = 8 + 8  # one_i64 and axes_1


@dataclass(frozen=True)
class TargetShape:
    """A GLM-4 decoder's shape (Glm4ForCausalLM: sandwich norms, partial rotary 0.5, q/k/v bias, untied lm_head)."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TargetShape":
        return cls(**data)


TARGETS = {
    "glm-edge-1.5b": TargetShape("glm-edge-1.5b", 2048, 28, 16, 4, 128, 6144, 59264),
    "autoglm-phone-9b": TargetShape("autoglm-phone-9b", 4096, 40, 32, 2, 128, 13696, 151552),
}


def target_shape(name: str) -> TargetShape:
    """The shape of a named target.

    Args:
        name: one of TARGETS.
    Returns:
        TargetShape.
    Raises:
        ValueError: an unknown name (also "tiny": that is the loaded model, which the caller measures itself).
    """
    if name in TARGETS:
        return TARGETS[name]
    raise ValueError(f"unknown target {name!r}: the targets are {', '.join(TARGETS)} (target 'tiny' is the "
                     "loaded model itself, measured directly, not through a target shape)")


# ---- what the recipe deploys ---------------------------------------------------------------------

def _recipe(recipe):
    from ..recipe import Recipe

    if recipe is None:
        return Recipe()
    return recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)


def deployed_shape(shape: TargetShape, recipe) -> TargetShape:
    """The shape after the recipe's structured pruning, by the knobs' own count rules.

    Args:
        shape: the target's shape.
        recipe: Recipe, recipe dict or JSON (None: no pruning).
    Returns:
        TargetShape: `channels` keeps `kept_channels(I, ratio)` MLP channels, `heads` keeps
        `kept_heads_per_group` query heads per KV group; other methods change no dense shape.
    Raises:
        ValueError: a heads ratio that would leave no head in a group.
    """
    from ..prune.structured import ChannelsConfig, HeadsConfig, kept_channels, kept_heads_per_group

    prune = _recipe(recipe).prune
    if isinstance(prune, ChannelsConfig):
        return dataclasses.replace(shape, intermediate_size=kept_channels(shape.intermediate_size, prune.ratio))
    if isinstance(prune, HeadsConfig):
        group = shape.num_heads // shape.num_kv_heads
        return dataclasses.replace(shape, num_heads=shape.num_kv_heads * kept_heads_per_group(group, prune.ratio))
    return shape


def weight_precision(recipe) -> dict:
    """How the exported decoder layers store their weights (as `workbench.export.precision_of`; lm_head stays float32).

    Args:
        recipe: Recipe, recipe dict or JSON (None: float32).
    Returns:
        {"kind": "float32" | "int8" | "int4", "bits": 32 | 8 | 4, "block_size": MatMulNBits block (0 for
        float), "group_size": the recipe's group (0: per channel, written as blocks of 128), "symmetric"}.
    Raises:
        ValueError: bits 3 or 2 (ONNX Runtime has no kernel of that width; the caller falls back).
    """
    q = _recipe(recipe).quant
    if q is None or q.bits == 16:
        return {"kind": "float32", "bits": 32, "block_size": 0, "group_size": 0, "symmetric": True}
    if q.bits in (3, 2):
        raise ValueError(f"quant.bits {q.bits} has no ONNX Runtime kernel (MatMulNBits runs 4 and 8 bits on CPU), "
                         "so it cannot be timed at a target")
    if q.bits == 8 and q.activations == "int8":  # torch.ao's per-channel codes, written as blocks of 128
        return {"kind": "int8", "bits": 8, "block_size": _PER_CHANNEL_BLOCK, "group_size": 0,
                "symmetric": bool(q.symmetric)}
    return {"kind": f"int{q.bits}", "bits": q.bits, "block_size": q.group_size or _PER_CHANNEL_BLOCK,
            "group_size": q.group_size, "symmetric": bool(q.symmetric)}


def precision_label(precision: dict) -> str:
    """E.g. "MatMulNBits int4 block 32" or "float32"."""
    if precision["kind"] == "float32":
        return "float32"
    return f"MatMulNBits {precision['kind']} block {precision['block_size']}"


# ---- computed bytes ------------------------------------------------------------------------------

def _layer_linears(shape: TargetShape) -> list[tuple[str, int, int, bool]]:
    """The weight MatMuls of one decoder layer as the graph writes them: (name, N out, K in, bias)."""
    q, kv = shape.num_heads * shape.head_dim, shape.num_kv_heads * shape.head_dim
    return [("qkv_proj", q + 2 * kv, shape.hidden_size, True), ("o_proj", shape.hidden_size, q, False),
            ("gate_up_proj", 2 * shape.intermediate_size, shape.hidden_size, False),
            ("down_proj", shape.hidden_size, shape.intermediate_size, False)]


def _block(group: int, k: int) -> int:
    """The MatMulNBits block of a K-input layer quantized at `group` (as `workbench.ort.nbits.block_size`)."""
    g = group or k
    return g if g < k else _PER_CHANNEL_BLOCK  # one group per row: blocks of 128 holding the row's grid


def _check_groups(shape: TargetShape, precision: dict) -> None:
    """Raises ValueError where the group size does not divide a layer's inputs (the quantizers refuse it too)."""
    group = precision["group_size"]
    if precision["kind"] == "float32" or not group:
        return
    for name, _, k, _ in _layer_linears(shape):
        if k % group:
            raise ValueError(f"quant.group_size {group} does not divide the {k} inputs of {name} at target "
                             f"{shape.name!r} (after pruning): the quantizers refuse this recipe there")


def _linear_bytes(n: int, k: int, bias: bool, precision: dict) -> int:
    """Initializer bytes of one (N, K) weight MatMul (+ float32 bias) in the graph."""
    extra = 4 * n if bias else 0
    if precision["kind"] == "float32":
        return 4 * n * k + extra
    bits, block = precision["bits"], _block(precision["group_size"], k)
    blocks = -(-k // block)
    codes = n * blocks * block * bits // 8  # B: uint8 (N, blocks, block * bits / 8)
    scales = 4 * n * blocks  # float32, one per block
    zeros = 0 if precision["symmetric"] else n * -(-blocks * bits // 8)  # uint8, packed as B
    return codes + scales + zeros + extra


def _rotary_bytes(head_dim: int, max_positions: int) -> int:
    """cos + sin caches: float32 (max_positions, rotary_dim / 2 rounded up to a multiple of 8)."""
    half = int(head_dim * PARTIAL_ROTARY) // 2
    return 2 * 4 * max_positions * (-(-half // 8) * 8)


def computed_weight_bytes(shape: TargetShape, precision: dict, *, embed_rows: int | None = None,
                          num_layers: int | None = None, max_positions: int = MAX_POSITIONS) -> int:
    """The bytes the exported fused graph of this shape stores (its initializers).

    float32 embedding and lm_head; per layer the fused qkv, o, gate_up and down MatMuls (float32, or
    MatMulNBits codes N*K*bits/8 + a float32 scale per block + packed zero points when asymmetric),
    the q/k/v bias and four RMSNorm weights (float32); the final norm, the rotary caches and constants.

    Args:
        shape: the (deployed) shape.
        precision: `weight_precision` of the recipe.
        embed_rows: embedding rows (default the vocabulary: the artifact; fewer: the timing graph).
        num_layers: depth (default the shape's).
        max_positions: rotary cache rows.
    Returns:
        Bytes.
    """
    h, v = shape.hidden_size, shape.vocab_size
    layers = shape.num_layers if num_layers is None else num_layers
    per_layer = sum(_linear_bytes(n, k, b, precision) for _, n, k, b in _layer_linears(shape))
    per_layer += 4 * 4 * h + 2 * _NORM_CONST_BYTES  # 4 norm weights; the 2 sandwich norms are plain RMSNorms
    fixed = 4 * (v if embed_rows is None else embed_rows) * h + 4 * h * v + 4 * h  # embedding, lm_head, final norm
    fixed += _rotary_bytes(shape.head_dim, max_positions) + _MASK_CONST_BYTES
    fixed += _NORM_CONST_BYTES if layers else 0  # layer 0's input norm has no skip input: a plain RMSNorm
    return fixed + layers * per_layer


def kv_bytes_per_token(shape: TargetShape) -> int:
    """KV-cache bytes per token: 2 (K and V) * layers * KV heads * head dim * 4 (the graph's KV is float32)."""
    return 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim * 4


# ---- the random-weight decoder -------------------------------------------------------------------

def _config(shape: TargetShape, num_layers: int, max_positions: int):
    import transformers

    return transformers.Glm4Config(
        vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim, partial_rotary_factor=PARTIAL_ROTARY, attention_bias=True,
        max_position_embeddings=max_positions, tie_word_embeddings=False, pad_token_id=None, bos_token_id=None,
        eos_token_id=None)


def _float_linear(k: int, n: int, bias: bool, gen: torch.Generator) -> nn.Linear:
    """A float32 (N, K) Linear with uniform random weights of std ~ 1/sqrt(3K)."""
    lin = nn.Linear(k, n, bias=bias, device="meta").to_empty(device="cpu")
    with torch.no_grad():
        lin.weight.uniform_(-1 / math.sqrt(k), 1 / math.sqrt(k), generator=gen)
        if bias:
            lin.bias.normal_(0, 0.02, generator=gen)
    return lin.requires_grad_(False)


def _packed_linear(k: int, n: int, bias: bool, precision: dict, gen: torch.Generator) -> nn.Module:
    """A PackedLinear of random codes on the recipe's grid (no float weight is ever made).

    Codes: random bytes (every byte is valid packed codes); scales: float16 (N, groups) around
    1 / (sqrt(K) * code std), so activations stay in range; zero points 2^(bits-1) when symmetric,
    random per group (N, groups) when not.
    """
    from ..quant import PackedLinear

    bits, group, sym = precision["bits"], precision["group_size"], precision["symmetric"]
    layer = PackedLinear(k, n, bits, group, bias=bias, shared_zero=sym)
    groups = k // (group or k)
    code_std = 2 ** bits / math.sqrt(12)
    with torch.no_grad():
        layer.qweight.random_(0, 256, generator=gen)  # uint8 (ceil(N * K * bits / 8),)
        scale = torch.rand(n, groups, generator=gen).mul_(0.5).add_(0.75).div_(math.sqrt(k) * code_std)
        layer.scale.copy_(scale.half())  # (N, groups)
        if sym:
            layer.zero.fill_(2 ** (bits - 1))  # (1, 1)
        else:
            layer.zero.random_(0, 2 ** bits, generator=gen)  # (N, groups)
            layer.zero[0, 0] = 0  # never all at the default midpoint: the graph then stores zero points
        if bias:
            layer.bias.normal_(0, 0.02, generator=gen)
    return layer


def _weight_linear(k: int, n: int, bias: bool, precision: dict, gen: torch.Generator) -> nn.Module:
    if precision["kind"] == "float32":
        return _float_linear(k, n, bias, gen)
    return _packed_linear(k, n, bias, precision, gen)


def _materialize_rest_(model: nn.Module, gen: torch.Generator) -> None:
    """Allocate what is still on the meta device (the RMSNorms) on CPU: norm weights 1 + small noise."""
    for module in model.modules():
        own = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        if any(t.is_meta for t in own):
            module.to_empty(device="cpu", recurse=False)
            with torch.no_grad():
                for p in module.parameters(recurse=False):
                    p.copy_(1 + 0.05 * torch.randn(p.shape, generator=gen))
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"random_decoder left tensors on the meta device: {left[:3]}")


@torch.no_grad()
def random_decoder(shape: TargetShape, precision: dict, num_layers: int, embed_rows: int = 1024, *,
                   seed: int = 0, max_positions: int = MAX_POSITIONS) -> nn.Module:
    """A random-weight Glm4ForCausalLM of `shape` at `num_layers` layers, carrying `precision`.

    Built on the meta device, then every decoder Linear (q, k, v, o, gate_up, down) is replaced by a
    PackedLinear of random codes (or a float32 Linear of random values), lm_head by a float32 random
    Linear, the embedding by one of `embed_rows` rows (Gather's time does not depend on the table's
    size: GBs saved at vocab 151552), the rotary module re-created on CPU; the norms are then allocated.

    Args:
        shape: the (deployed) shape.
        precision: `weight_precision` of the recipe.
        num_layers: decoder layers built.
        embed_rows: embedding rows; token ids fed to it must be < embed_rows.
        seed: random seed.
        max_positions: the config's max_position_embeddings (rotary cache rows).
    Returns:
        The model in eval mode.
    Raises:
        ValueError: a group size that does not divide a layer's inputs.
    """
    from transformers import Glm4ForCausalLM
    from transformers.models.glm4.modeling_glm4 import Glm4RotaryEmbedding

    _check_groups(shape, precision)
    cfg = _config(shape, num_layers, max_positions)
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = Glm4ForCausalLM(cfg)
    for layer in model.model.layers:
        for parent, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                              (layer.mlp, ("gate_up_proj", "down_proj"))):
            for name in names:
                old = getattr(parent, name)
                setattr(parent, name, _weight_linear(old.in_features, old.out_features, old.bias is not None,
                                                     precision, gen))
    emb = nn.Embedding(embed_rows, shape.hidden_size, device="meta").to_empty(device="cpu")
    emb.weight.normal_(0, 1.0, generator=gen)
    model.model.embed_tokens = emb.requires_grad_(False)
    model.lm_head = _float_linear(shape.hidden_size, shape.vocab_size, False, gen)  # lm_head stays float32
    model.model.rotary_emb = Glm4RotaryEmbedding(cfg)
    _materialize_rest_(model, gen)
    return model.eval()


# ---- the record ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetRecord:
    """Latency (measured on ONNX Runtime, ms) and memory (computed, bytes) of a recipe at a target."""

    name: str
    decode_ms_per_token: float
    decode_ms_per_token_p90: float
    prefill_ms: float
    prefill_tokens: int
    weight_bytes: int
    kv_bytes_per_token: int
    context_tokens: int
    memory_bytes_at_context: int
    method: str  # "full depth" or "measured at k and m layers, linear in depth"
    engine: str  # e.g. "onnxruntime-fused (MatMulNBits int4 block 32)"
    layers_measured: tuple[int, ...]
    shape: dict  # the deployed TargetShape
    memory_method: str = MEMORY_METHOD

    def to_json(self) -> dict:
        """The record as JSON (layers_measured a list)."""
        out = dataclasses.asdict(self)
        out["layers_measured"] = list(self.layers_measured)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "TargetRecord":
        """Inverse of `to_json`."""
        return cls(**{**data, "layers_measured": tuple(data["layers_measured"])})

    def at_context(self, context_tokens: int) -> "TargetRecord":
        """The same measurement with memory computed at another context."""
        return dataclasses.replace(self, context_tokens=context_tokens,
                                   memory_bytes_at_context=self.weight_bytes + self.kv_bytes_per_token * context_tokens)


def depth_method(depths: tuple[int, int]) -> str:
    """E.g. "measured at 2 and 4 layers, linear in depth"."""
    return f"measured at {depths[0]} and {depths[1]} layers, linear in depth"


def target_key(shape: TargetShape, precision: dict, *, threads: int, prefill_tokens: int, decode_tokens: int,
               repeats: int, depths: tuple[int, int], full_depth_bytes: int) -> str:
    """The results-store key of a target measurement: sha256 of the canonical JSON of what determines the time.

    Args:
        shape: the deployed shape; precision: `weight_precision`; the rest: `measure_target`'s settings.
    Returns:
        Hex digest (the context is not part of it: memory is recomputed for any context).
    """
    import onnxruntime

    from .provenance import machine

    m = machine()
    body = {"shape": shape.to_json(), "precision": precision, "threads": threads,
            "onnxruntime": onnxruntime.__version__, "machine": {"processor": m["processor"], "cpus": m["cpus"]},
            "prefill_tokens": prefill_tokens, "decode_tokens": decode_tokens, "repeats": repeats, "warmup": WARMUP,
            "depths": list(depths), "full_depth_bytes": full_depth_bytes, "v": CACHE_VERSION}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- measuring -----------------------------------------------------------------------------------

class _RowsDecoder:
    """An OrtDecoder whose decode tokens are folded into the embedding's rows (argmax may exceed them)."""

    def __init__(self, decoder, rows: int):
        self.decoder, self.rows, self.session = decoder, rows, decoder.session

    def prefill(self, ids):
        return self.decoder.prefill(ids)

    def decode_one(self, token, past, past_len):
        return self.decoder.decode_one(token % self.rows, past, past_len)


def _free() -> None:
    """Collect garbage and hand freed heap pages back to the system (GB-sized weights come and go)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _random_session(shape: TargetShape, precision: dict, layers: int, embed_rows: int, threads: int):
    """An OrtDecoder of `random_decoder(...)`. A graph above 1 GiB is written to a temporary folder and the
    PyTorch model freed before ONNX Runtime loads it, so the weights are never held twice (at 9B: 2.5 GB lm_head)."""
    from ..ort import OrtDecoder, export_fused, fused_decoder, make_session
    from ..ort.contract import EXTERNAL_DATA_BYTES
    from ..ort.graph import state_bytes

    model = random_decoder(shape, precision, layers, embed_rows)
    if state_bytes(model) <= EXTERNAL_DATA_BYTES:
        return fused_decoder(model, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_fused(model, path)
        del model
        _free()
        return OrtDecoder(make_session(path, threads))


def _time_depth(shape: TargetShape, precision: dict, layers: int, *, threads: int, prefill_tokens: int,
                decode_tokens: int, repeats: int, embed_rows: int, log) -> tuple[float, float, float]:
    """(decode median ms, decode p90 ms, prefill median ms) of the random decoder at `layers` layers."""
    from .latency import measure_ort_latency

    t0 = time.perf_counter()
    decoder = _random_session(shape, precision, layers, embed_rows, threads)
    log(f"{layers} layers: graph built in {time.perf_counter() - t0:.1f} s")
    try:
        ids = np.random.default_rng(0).integers(0, embed_rows, (1, prefill_tokens), dtype=np.int64)  # (1, T)
        lat = measure_ort_latency(_RowsDecoder(decoder, embed_rows), ids, decode_tokens=decode_tokens,
                                  warmup=WARMUP, repeats=repeats, engine="onnxruntime-fused")
    finally:
        del decoder
        _free()
    log(f"{layers} layers: decode {lat.decode_ms_per_token.median:.2f} ms/token, "
        f"prefill {lat.prefill_ms.median:.1f} ms ({time.perf_counter() - t0:.1f} s)")
    return lat.decode_ms_per_token.median, lat.decode_ms_per_token.p90, lat.prefill_ms.median


def _at_depth(points: dict[int, tuple[float, ...]], depth: int) -> tuple[float, ...]:
    """Each figure linear in depth through the two measured depths, at `depth` (slope >= 0: noise never
    makes a deeper model faster)."""
    (k, tk), (m, tm) = sorted(points.items())
    return tuple(b + max((b - a) / (m - k), 0.0) * (depth - m) for a, b in zip(tk, tm))


def measure_target(recipe, target, *, store=None, threads: int | None = None, context_tokens: int = DEFAULT_CONTEXT,
                   prefill_tokens: int = 128, decode_tokens: int = 8, repeats: int = 3,
                   full_depth_bytes: int = 2 << 30, depths: tuple[int, int] = (2, 4),
                   progress: bool = False) -> TargetRecord:
    """Latency of `recipe` at `target` on ONNX Runtime (this machine), and its memory there (computed).

    Args:
        recipe: Recipe, recipe dict or JSON.
        target: a TARGETS name or a TargetShape ("tiny", the loaded model, is the caller's).
        store: a ResultsStore caching the result (None: always measure).
        threads: intra-op threads (None: torch's thread count).
        context_tokens: context at which memory is computed.
        prefill_tokens: prompt length timed.
        decode_tokens: decode steps timed per repeat.
        repeats: timed repeats (median and p90 kept).
        full_depth_bytes: the largest graph (computed bytes) measured at full depth.
        depths: the two depths (k < m) measured when the full graph is larger.
        progress: print progress to stderr.
    Returns:
        TargetRecord.
    Raises:
        ValueError: an unknown target, 3- / 2-bit weights, a group size that does not divide a pruned
            layer, bad depths.
    """
    shape = deployed_shape(target if isinstance(target, TargetShape) else target_shape(target), recipe)
    precision = weight_precision(recipe)
    _check_groups(shape, precision)
    depths = tuple(int(d) for d in depths)
    if len(depths) != 2 or not 1 <= depths[0] < depths[1]:
        raise ValueError(f"depths must be two layer counts 1 <= k < m, got {depths}")
    threads = int(threads or torch.get_num_threads())
    settings = dict(threads=threads, prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, repeats=repeats)
    key = target_key(shape, precision, depths=depths, full_depth_bytes=full_depth_bytes, **settings)
    if store is not None and (hit := store.get_target(key)) is not None:
        return TargetRecord.from_json(hit).at_context(context_tokens)

    def log(msg: str) -> None:
        if progress:
            print(f"target {shape.name}: {msg}", file=sys.stderr, flush=True)

    embed_rows = min(1024, shape.vocab_size)
    graph_bytes = computed_weight_bytes(shape, precision, embed_rows=embed_rows)
    timing = dict(threads=threads, prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, repeats=repeats,
                  embed_rows=embed_rows, log=log)
    if graph_bytes <= full_depth_bytes:
        layers = (shape.num_layers,)
        figures = _time_depth(shape, precision, shape.num_layers, **timing)
        method = FULL_DEPTH
    else:
        layers = depths
        figures = _at_depth({d: _time_depth(shape, precision, d, **timing) for d in depths}, shape.num_layers)
        method = depth_method(depths)
    decode, decode_p90, prefill = figures
    weight, kv = computed_weight_bytes(shape, precision), kv_bytes_per_token(shape)
    record = TargetRecord(shape.name, decode, max(decode_p90, decode), prefill, prefill_tokens, weight, kv,
                          context_tokens, weight + kv * context_tokens, method,
                          f"onnxruntime-fused ({precision_label(precision)})", layers, shape.to_json())
    if store is not None:
        from .provenance import machine

        store.put_target(key, record.to_json(), machine())
    return record


__all__ = ["DEFAULT_CONTEXT", "FULL_DEPTH", "MEMORY_METHOD", "TARGETS", "TargetRecord", "TargetShape",
           "computed_weight_bytes", "deployed_shape", "depth_method", "kv_bytes_per_token", "measure_target",
           "precision_label", "random_decoder", "target_key", "target_shape", "weight_precision"]
