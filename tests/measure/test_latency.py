"""measure_latency (PyTorch) and measure_ort_latency (ONNX Runtime): a LatencyRecord of what was timed.
Bounds and bookkeeping only, never timings: median <= p90, one value per repeat, the prompt's length, the
engine string as given, tokens per second from the decode median."""
import pytest
import torch

from workbench.measure.latency import measure_latency, measure_ort_latency
from workbench.measure.records import LatencyRecord, Spread
from workbench.ort import encode, fused_decoder


@pytest.fixture(scope="module")
def prompt(tiny, eval_steps):
    """(1, T) int64 ids of a real eval prompt of open-autoglm-tiny."""
    return torch.from_numpy(encode(tiny[1], eval_steps[0]))


@pytest.fixture(scope="module")
def decoder(tiny):
    """The fused ONNX Runtime graph of open-autoglm-tiny, on one thread."""
    return fused_decoder(tiny[0], threads=1)


def check_record(rec, repeats, prompt_tokens, engine):
    assert isinstance(rec, LatencyRecord)
    for spread in (rec.prefill_ms, rec.decode_ms_per_token):
        assert isinstance(spread, Spread)
        assert spread.n == repeats
        assert 0 < spread.median <= spread.p90
    assert rec.prompt_tokens == prompt_tokens
    assert rec.engine == engine
    assert rec.tokens_per_s == pytest.approx(1000 / rec.decode_ms_per_token.median)
    assert rec.threads >= 1


@pytest.mark.parametrize("repeats", [1, 3])
def test_pytorch_record(tiny, prompt, repeats):
    rec = measure_latency(tiny[0], prompt, decode_tokens=3, warmup=1, repeats=repeats, engine="pytorch-eager (test)")
    check_record(rec, repeats, prompt.shape[1], "pytorch-eager (test)")
    assert rec.threads == torch.get_num_threads()


def test_pytorch_record_of_a_short_prompt_without_warmup(model):
    ids = torch.randint(2, 100, (1, 5), generator=torch.Generator().manual_seed(0))  # (1, 5)
    rec = measure_latency(model, ids, decode_tokens=2, warmup=0, repeats=2)
    check_record(rec, 2, 5, "pytorch-eager")  # the default engine string


@pytest.mark.parametrize("repeats", [1, 3])
def test_ort_record(decoder, prompt, repeats):
    rec = measure_ort_latency(decoder, prompt.numpy(), decode_tokens=3, warmup=1, repeats=repeats,
                              engine="onnxruntime-fused (test)")
    check_record(rec, repeats, prompt.shape[1], "onnxruntime-fused (test)")
    assert rec.threads == 1  # the session's intra-op threads


def test_ort_record_takes_a_torch_prompt_and_the_default_engine(decoder, prompt):
    rec = measure_ort_latency(decoder, prompt[:, :16], decode_tokens=2, warmup=0, repeats=2)
    check_record(rec, 2, 16, "onnxruntime-cpu")


def test_spread_is_the_median_and_the_value_at_the_90th_percentile_rank():
    s = Spread.of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median, s.p90, s.n) == (3.0, 5.0, 5)
    assert Spread.of([7.0]) == Spread(7.0, 7.0, 1)
    many = Spread.of(range(1, 101))
    assert many.median <= many.p90 and many.p90 == 90
    with pytest.raises(ValueError, match="no values"):
        Spread.of([])
