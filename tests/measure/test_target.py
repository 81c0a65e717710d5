"""Latency at a deployment target's shape: pruned shapes, precisions, the random-weight decoder and its
computed bytes, the results-store cache and the two-depth fit (on a tiny custom shape: seconds)."""
import dataclasses

import numpy as np
import pytest
from torch import nn

from workbench.measure import target as tgt
from workbench.measure.target import (DEFAULT_CONTEXT, TARGETS, TargetRecord, TargetShape, computed_weight_bytes,
                                      deployed_shape, kv_bytes_per_token, measure_target, random_decoder,
                                      target_shape, weight_precision)
from workbench.store import ResultsStore

TINY = TargetShape("test-tiny", hidden_size=64, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=16,
                   intermediate_size=128, vocab_size=512)
FAST = dict(threads=1, prefill_tokens=8, decode_tokens=2, repeats=1)
INT4 = {"quant": {"method": "rtn", "bits": 4, "group_size": 32}}
INT4_ASYM = {"quant": {"method": "rtn", "bits": 4, "group_size": 32, "symmetric": False}}


def test_named_targets_and_tiny_is_the_callers():
    assert target_shape("autoglm-phone-9b") == TargetShape("autoglm-phone-9b", 4096, 40, 32, 2, 128, 13696, 151552)
    assert target_shape("glm-edge-1.5b").vocab_size == 59264 and set(TARGETS) == {"glm-edge-1.5b", "autoglm-phone-9b"}
    for name in ("tiny", "glm-9b"):
        with pytest.raises(ValueError, match="glm-edge-1.5b, autoglm-phone-9b.*loaded model"):
            target_shape(name)


def test_deployed_shape_applies_the_knobs_count_rules():
    channels = deployed_shape(TINY, {"prune": {"method": "channels", "ratio": 0.3}})
    assert dataclasses.replace(channels, intermediate_size=128) == TINY and channels.intermediate_size == 88
    heads = deployed_shape(TINY, {"prune": {"method": "heads", "ratio": 0.5}})  # 2 per group -> 1 per group
    assert (heads.num_heads, heads.num_kv_heads, heads.intermediate_size) == (2, 2, 128)
    assert deployed_shape(TARGETS["autoglm-phone-9b"], {"prune": {"method": "heads", "ratio": 0.25}}).num_heads == 24
    edge = deployed_shape(TARGETS["glm-edge-1.5b"], {"prune": {"method": "channels", "ratio": 0.5}})
    assert edge.intermediate_size == 3072
    for unstructured in ({"prune": {"method": "wanda", "ratio": 0.5}}, {"prune": {"method": "magnitude"}}, None, {}):
        assert deployed_shape(TINY, unstructured) == TINY


@pytest.mark.parametrize("quant, expected", [
    (None, ("float32", 32, 0, True)),
    ({"method": "rtn", "bits": 16}, ("float32", 32, 0, True)),
    ({"method": "rtn", "bits": 8, "group_size": 0}, ("int8", 8, 128, True)),
    ({"method": "rtn", "bits": 8, "activations": "int8"}, ("int8", 8, 128, True)),
    ({"method": "rtn", "bits": 4, "group_size": 32, "symmetric": False}, ("int4", 4, 32, False)),
    ({"method": "gptq", "bits": 4, "group_size": 64}, ("int4", 4, 64, True)),
])
def test_weight_precision_maps_the_recipe(quant, expected):
    p = weight_precision({} if quant is None else {"quant": quant})
    assert (p["kind"], p["bits"], p["block_size"], p["symmetric"]) == expected


@pytest.mark.parametrize("bits", [3, 2])
def test_low_bits_are_refused_with_the_reason(bits):
    with pytest.raises(ValueError, match=f"quant.bits {bits} has no ONNX Runtime kernel"):
        weight_precision({"quant": {"method": "rtn", "bits": bits}})
    with pytest.raises(ValueError, match="no ONNX Runtime kernel"):
        measure_target({"quant": {"method": "rtn", "bits": bits}}, TINY, **FAST)


def test_random_decoder_runs_through_the_fused_graph():
    from workbench.ort import fused_decoder
    from workbench.quant import PackedLinear

    model = random_decoder(TINY, weight_precision(INT4_ASYM), num_layers=3, embed_rows=100)
    assert model.config.num_hidden_layers == 3 and model.model.embed_tokens.weight.shape == (100, 64)
    assert model.lm_head.weight.shape == (512, 64) and type(model.lm_head) is nn.Linear
    attn = model.model.layers[0].self_attn
    assert isinstance(attn.q_proj, PackedLinear) and attn.q_proj.bias is not None
    assert attn.k_proj.zero.shape == (32, 2)  # asymmetric: one zero point per row and group
    assert not any(t.is_meta for t in model.state_dict().values())
    logits, _ = fused_decoder(model, threads=1).prefill(np.array([[1, 5, 7, 99]]))  # ids < embed_rows
    assert logits.shape == (1, 4, 512) and np.isfinite(logits).all()
    full_table = random_decoder(TINY, weight_precision(INT4_ASYM), num_layers=3, embed_rows=TINY.vocab_size)
    gen = fused_decoder(full_table, threads=1).greedy(np.array([[1, 5, 7, 99]]), eos_id=-1, max_new_tokens=4)
    assert len(gen.tokens) == 4 and all(0 <= t < 512 for t in gen.tokens)


@pytest.mark.parametrize("recipe", [{}, INT4, INT4_ASYM, {"quant": {"method": "rtn", "bits": 8, "group_size": 0}}],
                         ids=["float32", "int4-g32", "int4-g32-asym", "int8-per-channel"])
def test_computed_bytes_are_the_graphs_initializer_bytes(recipe):
    from workbench.ort.graph import build_fused, initializer_bytes

    precision = weight_precision(recipe)
    model = random_decoder(TINY, precision, TINY.num_layers, embed_rows=TINY.vocab_size, max_positions=256)
    proto, _ = build_fused(model)
    assert computed_weight_bytes(TINY, precision, max_positions=256) == initializer_bytes(proto)
    small = random_decoder(TINY, precision, 2, embed_rows=100, max_positions=256)
    assert computed_weight_bytes(TINY, precision, embed_rows=100, num_layers=2, max_positions=256) == \
        initializer_bytes(build_fused(small)[0])


def test_computed_bytes_at_the_published_targets_are_plausible():
    nine = TARGETS["autoglm-phone-9b"]
    f32, int4 = computed_weight_bytes(nine, weight_precision({})), computed_weight_bytes(nine, weight_precision(INT4))
    assert 37e9 < f32 < 39e9  # ~9.4 B parameters in float32
    assert 9e9 < int4 < 11e9  # 4.5 bits per decoder weight + float32 embedding and lm_head (5 GB)
    assert kv_bytes_per_token(nine) == 2 * 40 * 2 * 128 * 4 and kv_bytes_per_token(TINY) == 1024


def test_the_cache_hits_for_the_same_key_and_misses_for_another(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "r.db")
    built = []
    real = tgt.random_decoder
    monkeypatch.setattr(tgt, "random_decoder", lambda *a, **k: built.append(a[2]) or real(*a, **k))
    first = measure_target(INT4, TINY, store=store, **FAST)
    assert built == [4] and first.method == "full depth" and first.layers_measured == (4,)
    assert first.engine == "onnxruntime-fused (MatMulNBits int4 block 32)"
    assert 0 < first.decode_ms_per_token <= first.decode_ms_per_token_p90 and first.prefill_ms > 0

    def refuse(*a, **k):
        raise AssertionError("a cached target measurement built a graph")

    monkeypatch.setattr(tgt, "random_decoder", refuse)
    gptq_same_grid = {"quant": {"method": "gptq", "bits": 4, "group_size": 32},
                      "prune": {"method": "wanda", "ratio": 0.5}}  # same deployed shape and precision
    assert measure_target(gptq_same_grid, TINY, store=store, **FAST) == first
    assert ResultsStore(store.path).get_target(tgt.target_key(TINY, weight_precision(INT4), depths=(2, 4),
                                                              full_depth_bytes=2 << 30, **FAST)) == first.to_json()
    other_context = measure_target(INT4, TINY, store=store, context_tokens=1000, **FAST)
    assert other_context.decode_ms_per_token == first.decode_ms_per_token
    assert other_context.memory_bytes_at_context == first.weight_bytes + 1000 * first.kv_bytes_per_token
    with pytest.raises(AssertionError, match="built a graph"):
        measure_target(INT4_ASYM, TINY, store=store, **FAST)  # another precision: another key
    with pytest.raises(AssertionError, match="built a graph"):
        measure_target({"prune": {"method": "channels", "ratio": 0.5}, **INT4}, TINY, store=store, **FAST)


def test_two_depths_when_the_graph_is_too_large(tmp_path):
    rec = measure_target({"prune": {"method": "heads", "ratio": 0.5}}, TINY, full_depth_bytes=0, **FAST)
    assert rec.method == "measured at 2 and 4 layers, linear in depth" and rec.layers_measured == (2, 4)
    assert rec.engine == "onnxruntime-fused (float32)" and rec.shape["num_heads"] == 2
    assert rec.decode_ms_per_token > 0 and rec.decode_ms_per_token_p90 >= rec.decode_ms_per_token
    deployed = deployed_shape(TINY, {"prune": {"method": "heads", "ratio": 0.5}})
    assert rec.weight_bytes == computed_weight_bytes(deployed, weight_precision({}))
    assert rec.context_tokens == DEFAULT_CONTEXT and rec.memory_method == "computed from stored bytes"
    assert rec.memory_bytes_at_context == rec.weight_bytes + rec.kv_bytes_per_token * rec.context_tokens
    assert TargetRecord.from_json(rec.to_json()) == rec and rec.to_json()["layers_measured"] == [2, 4]


def test_extrapolation_is_linear_in_depth_and_never_decreasing():
    assert tgt._at_depth({2: (10.0, 12.0), 4: (14.0, 15.0)}, 40) == (86.0, 69.0)
    assert tgt._at_depth({2: (10.0,), 4: (9.0,)}, 40) == (9.0,)  # noise: a deeper model is not faster


def test_a_group_that_does_not_divide_a_pruned_layer_is_refused():
    with pytest.raises(ValueError, match="group_size 32 does not divide the 88 inputs of down_proj"):
        measure_target({"prune": {"method": "channels", "ratio": 0.3}, **INT4}, TINY, **FAST)
    with pytest.raises(ValueError, match="depths"):
        measure_target(INT4, TINY, depths=(4, 2), **FAST)
