"""The baseline measurement on open-autoglm-tiny: bounds on accuracy, measured memory and latency."""
import json

import pytest

from workbench.measure import DEFAULT_EPISODES, evaluate, model_fingerprint, target_logprobs, target_ids
from workbench.measure.fidelity import kl_and_ppl
from workbench.task import file_hash


@pytest.fixture(scope="module")
def report(tiny):
    model, tok = tiny
    return evaluate(model=model, tokenizer=tok, limit=40, progress=False, latency_repeats=3)


def test_accuracy_is_high_on_the_first_steps(report):
    acc = report.accuracy
    assert acc.n == 40
    # open-autoglm-tiny has learned the procedure (type) better than the coordinates of the element
    # (step); the 0.90 step-accuracy target is not reached yet (see the model card)
    assert acc.type >= 0.9
    assert 0.6 <= acc.step <= acc.type  # a correct step has the correct type
    assert acc.exact <= acc.step  # an exact match is a correct step
    assert acc.parse_failure <= 0.05
    assert len(report.predictions) == 40


def test_kv_bytes_per_token_matches_the_model_shape(report, tiny):
    cfg = tiny[0].config
    expected = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 4  # K and V, fp32
    assert report.memory.kv_bytes_per_token == pytest.approx(expected)
    assert report.memory.kv_bytes >= 300 * expected  # the longest prompt holds hundreds of tokens


def test_weight_bytes_equal_the_safetensors_payload(report):
    from workbench.model import DEFAULT_MODEL

    size = (DEFAULT_MODEL / "model.safetensors").stat().st_size
    assert 0.99 * size <= report.memory.weight_bytes <= size  # the file adds a small JSON header
    assert report.memory.peak_rss_bytes > report.memory.weight_bytes


def test_latency_is_measured_with_spread(report):
    lat = report.latency
    assert lat.engine == "pytorch-eager"
    assert lat.prompt_tokens > 300
    assert 0 < lat.prefill_ms.median <= lat.prefill_ms.p90
    assert 0 < lat.decode_ms_per_token.median <= lat.decode_ms_per_token.p90
    assert lat.prefill_ms.n == 3
    assert lat.tokens_per_s == pytest.approx(1000 / lat.decode_ms_per_token.median)


def test_report_json_has_the_design_names(report, tiny):
    data = json.loads(json.dumps(report.to_json()))
    assert {"step", "type", "exact", "parse_failure"} <= set(data["accuracy"])
    assert {"prefill_ms", "decode_ms_per_token", "tokens_per_s", "engine"} <= set(data["latency"])
    assert set(data["memory"]) == {"weight_bytes", "kv_bytes", "kv_bytes_per_token", "peak_rss_bytes"}
    prov = data["provenance"]
    assert prov["episodes_sha256"] == file_hash(DEFAULT_EPISODES)
    assert prov["model_fingerprint"] == model_fingerprint(tiny[0])
    assert {"torch", "transformers", "onnxruntime", "workbench"} <= set(prov["versions"])


def test_fidelity_of_the_model_to_itself(tiny, eval_steps):
    model, tok = tiny
    steps = eval_steps[:5]
    lp = target_logprobs(model, tok, steps, progress=False)
    kl, ppl = kl_and_ppl(lp, lp, [target_ids(tok, s) for s in steps])
    assert kl == pytest.approx(0.0, abs=1e-6)
    assert 1.0 <= ppl < 3.0  # far below a uniform guess over the vocabulary (~2000)


def test_whole_eval_split(tiny):
    """The model card's figure: the whole eval split, greedy. The 0.90 target is not reached yet (0.828
    measured for the CPU-trained committed model); this bound guards against regressions, and a perfect
    score would leave the knobs nothing to show. Parse failures (0.003; 0.017 for an earlier model) are
    answers like `do(action="Swipe", element=[495,746], end=[495,202])`."""
    model, tok = tiny
    acc = evaluate(model=model, tokenizer=tok, progress=False, latency_repeats=1).accuracy
    assert acc.n == 645
    assert 0.82 <= acc.step < 0.98 and acc.type >= 0.95 and acc.parse_failure <= 0.03
