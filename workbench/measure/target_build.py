"""What a target is timed on: the random-weight decoder of a target's shape carrying a recipe's precision,
the bytes its exported graph stores (computed), and its ONNX Runtime session timed at one depth.

The public face is `workbench.measure.target` (shapes, precision, the record, `measure_target`), which
re-exports `random_decoder`, `computed_weight_bytes` and `kv_bytes_per_token` from here.
"""
from __future__ import annotations

import ctypes
import gc
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..ort.nbits import PER_CHANNEL_BLOCK

if TYPE_CHECKING:  # annotations only (the target module imports this one)
    from .target import TargetShape

MAX_POSITIONS = 32768  # rows of the graph's rotary caches
PARTIAL_ROTARY = 0.5
WARMUP = 1  # untimed prefill + decode runs before the timed ones
_NORM_CONST_BYTES = 4 + 8 + 4  # a plain RMSNorm's constants in the graph: Pow 2 (f32), axes (i64), eps (f32)
_MASK_CONST_BYTES = 8 + 8  # one_i64 and axes_1


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
    return g if g < k else PER_CHANNEL_BLOCK  # one group per row: blocks of 128 holding the row's grid


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



# ---- timing one depth ---------------------------------------------------------------------------

class _RowsDecoder:
    """An OrtDecoder whose decode tokens are folded into the embedding's rows (argmax may exceed them)."""

    def __init__(self, decoder, rows: int):
        self.decoder, self.rows, self.session, self.threads = decoder, rows, decoder.session, decoder.threads

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


def _random_session(shape: TargetShape, precision: dict, layers: int, embed_rows: int, threads: int, *,
                    build=random_decoder):
    """An OrtDecoder of `build(...)` (`random_decoder`). The model is handed over without a second reference, so
    above 1 GiB `fused_decoder` frees it before ONNX Runtime loads the graph: the weights are never held twice
    (at 9B: 2.5 GB lm_head)."""
    from ..ort import fused_decoder

    decoder = fused_decoder(build(shape, precision, layers, embed_rows), threads=threads)
    _free()
    return decoder


def _time_depth(shape: TargetShape, precision: dict, layers: int, *, threads: int, prefill_tokens: int,
                decode_tokens: int, repeats: int, embed_rows: int, log,
                build=random_decoder) -> tuple[float, float, float]:
    """(decode median ms, decode p90 ms, prefill median ms) of the random decoder at `layers` layers
    (`build`: what makes it, `random_decoder` unless the caller hands its own)."""
    from .latency import measure_ort_latency

    t0 = time.perf_counter()
    decoder = _random_session(shape, precision, layers, embed_rows, threads, build=build)
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


def _time_depths(shape: TargetShape, precision: dict, depths: tuple[int, ...], *, threads: int, prefill_tokens: int,
                 decode_tokens: int, repeats: int, embed_rows: int, log,
                 build=random_decoder) -> dict[int, tuple[float, float, float]]:
    """`_time_depth` for several depths, interleaved: every depth's session is built first, then each round
    times every depth once, so a change in the machine's load falls on all depths alike (the per-layer
    slope fitted from them is a difference, which one-sided noise would bend).

    Returns:
        {depth: (decode median ms, decode p90 ms, prefill median ms)} over the rounds.
    """
    from .latency import measure_ort_latency
    from .records import Spread

    decoders = {}
    try:
        for d in depths:
            t0 = time.perf_counter()
            decoders[d] = _RowsDecoder(_random_session(shape, precision, d, embed_rows, threads, build=build), embed_rows)
            log(f"{d} layers: graph built in {time.perf_counter() - t0:.1f} s")
        ids = np.random.default_rng(0).integers(0, embed_rows, (1, prefill_tokens), dtype=np.int64)  # (1, T)
        decode = {d: [] for d in depths}
        prefill = {d: [] for d in depths}
        for r in range(repeats):
            for d in depths:
                lat = measure_ort_latency(decoders[d], ids, decode_tokens=decode_tokens, warmup=WARMUP if r == 0 else 0,
                                          repeats=1, engine="onnxruntime-fused")
                decode[d].append(lat.decode_ms_per_token.median)
                prefill[d].append(lat.prefill_ms.median)
    finally:
        decoders.clear()
        _free()
    out = {}
    for d in depths:
        dec = Spread.of(decode[d])
        out[d] = (dec.median, dec.p90, Spread.of(prefill[d]).median)
        log(f"{d} layers: decode {dec.median:.2f} ms/token (p90 {dec.p90:.2f}), prefill {out[d][2]:.1f} ms")
    return out
