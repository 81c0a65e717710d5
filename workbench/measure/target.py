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

The random-weight decoder, the computed bytes and the timing of one depth live in
`workbench.measure.target_build`; every name is importable from here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass

import torch

from ..ort.nbits import PER_CHANNEL_BLOCK
from .target_build import (WARMUP, _check_groups, _time_depth, _time_depths,
                           computed_weight_bytes, kv_bytes_per_token, random_decoder)
from .target_build import MAX_POSITIONS, PARTIAL_ROTARY  # noqa: F401  (their old home)

DEFAULT_CONTEXT = 25480  # tokens: the context Open-AutoGLM serves
CACHE_VERSION = 3  # 2: the two depths timed interleaved; 3: the fused graph decodes into a shared KV buffer
FULL_DEPTH = "full depth"
MEMORY_METHOD = "computed from stored bytes"


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

    def config_kwargs(self) -> dict:
        """The shape as transformers config arguments (GlmConfig / Glm4Config)."""
        return dict(hidden_size=self.hidden_size, num_hidden_layers=self.num_layers,
                    num_attention_heads=self.num_heads, num_key_value_heads=self.num_kv_heads, head_dim=self.head_dim,
                    intermediate_size=self.intermediate_size, vocab_size=self.vocab_size)

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
    from ..prune import ChannelsConfig, HeadsConfig, kept_channels, kept_heads_per_group

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
        return {"kind": "int8", "bits": 8, "block_size": PER_CHANNEL_BLOCK, "group_size": 0,
                "symmetric": bool(q.symmetric)}
    return {"kind": f"int{q.bits}", "bits": q.bits, "block_size": q.group_size or PER_CHANNEL_BLOCK,
            "group_size": q.group_size, "symmetric": bool(q.symmetric)}


def precision_label(precision: dict) -> str:
    """E.g. "MatMulNBits int4 block 32" or "float32"."""
    if precision["kind"] == "float32":
        return "float32"
    return f"MatMulNBits {precision['kind']} block {precision['block_size']}"


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
                  embed_rows=embed_rows, log=log, build=random_decoder)  # looked up here: patchable
    if graph_bytes <= full_depth_bytes:
        layers = (shape.num_layers,)
        figures = _time_depth(shape, precision, shape.num_layers, **timing)
        method = FULL_DEPTH
    else:
        layers = depths
        figures = _at_depth(_time_depths(shape, precision, depths, **timing), shape.num_layers)
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


def with_target(point, target: str | None, store=None, **kwargs):
    """The point with its latency and memory at a deployment shape (`point.target`), or as it is.

    Args:
        point: a measured `workbench.measure.point.Point`.
        target: "glm-edge-1.5b", "autoglm-phone-9b", ... (None or "tiny": the point itself).
        store: a ResultsStore caching target measurements (a recipe with the same precision and
            pruned shape as one measured before costs nothing).
        **kwargs: passed to `workbench.measure.target.measure_target` (e.g. context_tokens).
    Returns:
        A Point (a copy with `target` set).
    Raises:
        ValueError: an unknown target, a recipe ONNX Runtime cannot run (3- / 2-bit weights), or a KV-cache
            section (its policy is measured on the loaded model only: the target's graph holds a full cache).
    """
    if target in (None, "tiny"):
        return point
    if "cache" in point.recipe:
        raise ValueError("a KV-cache policy is measured on the loaded model only (the target's graph keeps a full "
                         "float32 cache); compare cache policies with the target set to 'tiny'")
    record = measure_target(_recipe(point.recipe), target, store=store, **kwargs)
    return dataclasses.replace(point, target=record.to_json())


__all__ = ["with_target", "DEFAULT_CONTEXT", "FULL_DEPTH", "MEMORY_METHOD", "TARGETS", "TargetRecord", "TargetShape",
           "computed_weight_bytes", "deployed_shape", "depth_method", "kv_bytes_per_token", "measure_target",
           "precision_label", "random_decoder", "target_key", "target_shape", "weight_precision"]
