"""The parity gate's rules (workbench/export/parity.py): the stated tolerances, each bound checked on
hand-made measurements, and the gate itself on a fused ONNX Runtime decoder of open-autoglm-tiny against
the same model (passes) and against a different model (fails, naming the broken rules)."""
import copy

import numpy as np
import pytest
import torch

import workbench.export.parity as parity
from workbench.export.parity import (TOLERANCES, ParityReport, PhaseParity, Tolerance, parity_gate,
                                     report_from_json)
from workbench.measure.records import AccuracyRecord
from workbench.ort import fused_decoder

N = 50  # hand-made gate steps


def test_stated_tolerances():
    int4 = TOLERANCES["int4"]
    assert int4.mean_kl == 1e-3 and int4.greedy_min == 0.98  # docs/design.md section 6
    assert int4.max_abs is None and not int4.greedy_identical and int4.accuracy_drop == 0.05
    f32 = TOLERANCES["float32"]
    assert f32.greedy_identical and f32.greedy_min == 1.0 and f32.max_abs == 1e-3 and f32.accuracy_drop is None
    assert TOLERANCES["int8"].mean_kl == 1e-3 and TOLERANCES["int8"].greedy_min == 0.98
    assert set(TOLERANCES) == {"float32", "int8", "int8-dynamic", "int4"}


def accuracy(step: float, n: int = N) -> AccuracyRecord:
    return AccuracyRecord(n, step, step, step, 0.0)


def gate(monkeypatch, precision, *, kl=(0.0, 0.0), max_abs=0.0, identical=N, acc_ort=0.8, acc_ref=0.8,
         tolerance=None, margin=1.0) -> ParityReport:
    """parity_gate with its measurements replaced by hand-made ones: mean KL (prefill, decode), max |dlogit|,
    greedy tokens identical on `identical` of N steps, step accuracy on each runtime, the reference's top-2
    margin where the others part."""
    monkeypatch.setattr(parity, "tie_margin", lambda reference, prompt, ours, theirs: margin)
    phases = (PhaseParity("prefill", 12, max_abs, kl[0], 1.0), PhaseParity("decode", 8, max_abs, kl[1], 1.0))
    ref_tokens = [[i] for i in range(N)]
    ort_tokens = [[i] if i < identical else [-1] for i in range(N)]
    monkeypatch.setattr(parity, "encode", lambda tokenizer, step: np.zeros((1, 3), np.int64))
    monkeypatch.setattr(parity, "compare_logits", lambda ref, dec, ids, n, progress: phases)
    monkeypatch.setattr(parity, "run_task_ort", lambda dec, tok, steps, progress: (accuracy(acc_ort), [], ort_tokens))
    monkeypatch.setattr(parity, "reference_task", lambda ref, tok, steps, progress: (accuracy(acc_ref), ref_tokens))
    return parity_gate(torch.nn.Identity(), None, None, list(range(N)), precision, prompts=2, decode_steps=4,
                       tolerance=tolerance, progress=False)


def test_int4_within_bounds_passes(monkeypatch):
    r = gate(monkeypatch, "int4", kl=(1e-3, 9e-4), max_abs=5.0, identical=49, acc_ort=0.75, acc_ref=0.8)
    assert r.passed and r.failures == ()  # KL at the bound, 98% greedy, accuracy 0.05 below, max_abs not gated
    assert r.greedy_identical == pytest.approx(0.98) and r.tolerance == TOLERANCES["int4"]
    assert "PASSED" in r.summary()


def test_a_part_at_a_near_tie_is_forgiven_where_quantized_differences_are(monkeypatch):
    r = gate(monkeypatch, "int4", identical=45, margin=0.01)  # 5 steps part where the reference's top two tie
    assert r.passed and r.greedy_identical == pytest.approx(0.9) and r.greedy_identical_to_tie == 1.0
    assert "(1.000 up to a near-tie)" in r.summary()
    r = gate(monkeypatch, "int4", identical=45, margin=parity.TIE_MARGIN + 0.01)  # a wider margin: a real part
    assert not r.passed and "differ on 5 of 50 steps beyond a near-tie" in r.failures[0]
    r = gate(monkeypatch, "float32", identical=49, margin=0.0)  # float32: identical, no tie forgiven
    assert not r.passed and r.greedy_identical_to_tie == pytest.approx(0.98)
    assert report_from_json(r.to_json()).greedy_identical_to_tie == r.greedy_identical_to_tie


@pytest.mark.parametrize("kl, phase", [((1.1e-3, 0.0), "prefill"), ((0.0, 2e-3), "decode")])
def test_int4_mean_kl_above_the_bound_fails(monkeypatch, kl, phase):
    r = gate(monkeypatch, "int4", kl=kl)
    assert not r.passed and len(r.failures) == 1
    assert r.failures[0].startswith(f"{phase} mean KL") and "> 0.001" in r.failures[0]


def test_int4_greedy_below_98_percent_fails(monkeypatch):
    r = gate(monkeypatch, "int4", identical=48)
    assert r.failures == (f"greedy actions differ on 2 of {N} steps beyond a near-tie (at most 2% may)",)


def test_int4_accuracy_drop_beyond_the_bound_fails(monkeypatch):
    r = gate(monkeypatch, "int4", acc_ort=0.7, acc_ref=0.8)
    assert len(r.failures) == 1 and r.failures[0].startswith("step accuracy on onnxruntime 0.700")


def test_float32_gates_max_abs_kl_and_every_greedy_action(monkeypatch):
    r = gate(monkeypatch, "float32", kl=(2e-6, 0.0), max_abs=2e-3, identical=N - 1, acc_ort=0.0, acc_ref=0.8)
    assert not r.passed
    assert [f.split(" ")[0] for f in r.failures] == ["prefill", "prefill", "decode", "greedy"]
    assert "prefill max |dlogit|" in r.failures[0] and "prefill mean KL" in r.failures[1]
    assert "differ on 1 of" in r.failures[3]  # no accuracy rule for float32: identical actions instead
    summary = r.summary()
    assert "FAILED" in summary and all(f"FAIL: {f}" in summary for f in r.failures)


def test_dynamic_int8_has_no_greedy_rule(monkeypatch):
    r = gate(monkeypatch, "int8-dynamic", kl=(1e-2, 1e-2), identical=0)
    assert r.passed


def test_a_given_tolerance_replaces_the_precisions(monkeypatch):
    loose = Tolerance(max_abs=None, mean_kl=1.0, greedy_identical=False, accuracy_drop=None)
    assert gate(monkeypatch, "float32", kl=(0.5, 0.5), max_abs=9.0, identical=0, tolerance=loose).passed


def test_report_json_round_trip(monkeypatch):
    r = gate(monkeypatch, "int4", kl=(0.0, 2e-3), identical=40)
    data = r.to_json()
    assert data["passed"] is False and data["failures"] == list(r.failures) and "predictions" not in data
    assert report_from_json(data) == r


def test_no_steps_is_refused():
    with pytest.raises(ValueError, match="at least one eval step"):
        parity_gate(torch.nn.Identity(), None, None, [], "int4", progress=False)


def test_phase_figures_on_hand_made_logits():
    ph = parity._Phase("prefill")
    ref = np.array([[[0.0, 0.0, 0.0], [2.0, 0.0, -1.0]]], np.float32)  # (1, 2, V)
    ph.add(ref, ref + 3.0)  # a constant shift: the same distribution, the same argmax
    rec = ph.record()
    assert (rec.phase, rec.positions, rec.top1_agreement) == ("prefill", 2, 1.0)
    assert rec.max_abs == pytest.approx(3.0) and rec.mean_kl == pytest.approx(0.0, abs=1e-12)
    ph = parity._Phase("decode")
    ph.add(np.zeros((1, 1, 2), np.float32), np.log(np.array([[[0.25, 0.75]]], np.float32)))
    # KL([.5, .5] || [.25, .75]) = 0.5 ln 2 + 0.5 ln(2/3) = 0.5 ln(4/3)
    assert ph.record().mean_kl == pytest.approx(0.5 * np.log(4 / 3), rel=1e-5)


# ---- the gate on a real fused decoder ----------------------------------------------------------

@pytest.fixture(scope="module")
def gate_steps(eval_steps):
    return eval_steps[:4]


def test_same_model_passes_for_float32(tiny, gate_steps):
    model, tok = tiny
    r = parity_gate(model, fused_decoder(model), tok, gate_steps, "float32", prompts=2, decode_steps=4,
                    progress=False)
    assert r.passed, r.summary()
    assert r.prefill.positions > 0 and r.decode.positions == 2 * 4
    assert r.prefill.max_abs <= 1e-3 and r.decode.mean_kl <= 1e-6 and r.greedy_identical == 1.0
    assert r.accuracy_onnxruntime.n == len(gate_steps)


@pytest.mark.parametrize("precision", ["float32", "int4"])
def test_a_different_model_fails_on_kl_and_greedy(tiny, gate_steps, precision):
    model, tok = tiny
    other = copy.deepcopy(model)
    with torch.no_grad():  # every logit moved one token id along (untied from the embeddings): argmax differs
        other.lm_head.weight = torch.nn.Parameter(torch.roll(model.lm_head.weight.detach(), 1, dims=0))
    r = parity_gate(model, fused_decoder(other), tok, gate_steps, precision, prompts=2, decode_steps=4,
                    progress=False)
    assert not r.passed
    assert any(f.startswith("prefill mean KL") for f in r.failures)
    assert any(f.startswith("decode mean KL") for f in r.failures)
    assert any(f.startswith(f"greedy actions differ on {len(gate_steps)} of {len(gate_steps)}") for f in r.failures)
    assert r.prefill.top1_agreement < 0.5 and r.greedy_identical == 0.0
    assert any("max |dlogit|" in f for f in r.failures) == (precision == "float32")  # int4: max_abs not gated
