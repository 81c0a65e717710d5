"""scripts/bench_knobs.py runs the transforms at GLM-Edge-1.5B layer shapes (one layer, small vocab)."""
import bench_knobs

from workbench.prune import kept_channels


def test_transforms_run_at_edge_shapes_and_shrink_what_they_should():
    rows = bench_knobs.main(["--layers", "1", "--vocab", "512", "--calib", "2", "--calib-len", "64",
                             "--past", "16", "--repeats", "1", "--only", "channels", "rtn", "gptq"])
    by = {bench_knobs.label(r["recipe"]): r for r in rows}
    base = by["baseline (fp32)"]
    h, i = bench_knobs.EDGE_1P5B["hidden_size"], bench_knobs.EDGE_1P5B["intermediate_size"]
    layer_bytes = base["weight_bytes"] - 2 * 512 * h * 4 - h * 4  # minus embeddings, lm_head, final norm
    assert layer_bytes > 40e6 * 4  # one GLM-Edge-1.5B decoder layer: ~48 M parameters
    channels = by["prune ratio=0.3 [channels]"]
    removed = i - kept_channels(i, 0.3)
    assert base["weight_bytes"] - channels["weight_bytes"] == 3 * h * removed * 4  # gate, up and down rows
    for name, most in (("quant bits=4 group_size=32 [rtn]", 0.2), ("quant bits=4 group_size=32 [gptq]", 0.2),
                       ("quant bits=8 group_size=32 [rtn]", 0.33), ("quant bits=8 activations=int8 [rtn]", 0.3)):
        shrink = (base["weight_bytes"] - by[name]["weight_bytes"]) / layer_bytes
        assert shrink > 1 - most, (name, shrink)
    assert by["quant bits=8 activations=int8 [rtn]"]["kernels"] == "torch-int8-dynamic"
    assert all(r["decode_ms"] > 0 and r["peak_rss_bytes"] < 24 * 2**30 for r in rows)
