"""ort.profile: per-operator kernel time of decode steps from ONNX Runtime's profile trace."""
import copy
import json

import numpy as np
import pytest

from workbench.ort import OrtDecoder, make_session
from workbench.ort.graph import build_fused
from workbench.ort.profile import per_step, table
from workbench.quant import RTNConfig, quantize_


@pytest.fixture(scope="module")
def trace(model, tmp_path_factory):
    """A profile of one prefill and three decode steps of the tiny model's int4 fused graph."""
    qmodel = copy.deepcopy(model)
    quantize_(qmodel, RTNConfig(bits=4, group_size=32))
    proto, _ = build_fused(qmodel)
    prefix = str(tmp_path_factory.mktemp("prof") / "step")
    dec = OrtDecoder(make_session(proto.SerializeToString(), threads=1, profile_prefix=prefix), share_buffer=True)
    logits, kv = dec.prefill(np.arange(2, 12, dtype=np.int64)[None])
    token, n = np.array([[5]], np.int64), 10
    for _ in range(3):
        logits, kv = dec.decode_one(token, kv, n)
        n += 1
    return dec.session.end_profiling()


def test_per_step_shares_and_operators(trace):
    ops = per_step(trace, skip_runs=1)
    names = {o.op for o in ops}
    assert {"MatMulNBits", "GroupQueryAttention"} <= names
    assert sum(o.share for o in ops) == pytest.approx(1.0)
    assert all(o.ms > 0 and o.calls > 0 for o in ops)
    assert [o.ms for o in ops] == sorted((o.ms for o in ops), reverse=True)
    gqa = next(o for o in ops if o.op == "GroupQueryAttention")
    assert gqa.calls == 2  # one per layer per step: the prefill's events are not counted
    text = table(ops, top=3)
    assert "MatMulNBits" in text and len(text.splitlines()) == 5


def test_skipping_counts_fewer_runs(trace):
    every = {o.op: o.calls for o in per_step(trace)}
    assert every["GroupQueryAttention"] == 2  # 4 runs, 8 attention kernels
    with pytest.raises(ValueError, match="cannot skip"):
        per_step(trace, skip_runs=4)


def test_not_a_trace(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps([{"cat": "Session", "name": "model_run", "ts": 0, "dur": 1}]))
    with pytest.raises(ValueError, match="no kernel events"):
        per_step(bad)
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable profile"):
        per_step(tmp_path / "y.json")
    with pytest.raises(ValueError, match="not a readable profile"):
        per_step(tmp_path / "missing.json")
