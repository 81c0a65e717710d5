"""The batching conclusion rule (notebook 03's closing cell) on hand-made reports: its decisions at the
bounds of each threshold, the recommendation, and the refusals."""
import pytest

from workbench.serve import (BatchingConfig, BatchSample, ServiceModel, ServingReport, batching_summary,
                             conclude_batching)

RATE = 12.0


def report(window, max_batch, throughput, p99, rate=RATE, mean_batch=2.0) -> ServingReport:
    return ServingReport("replay", float(window), max_batch, rate, 2000, p99 / 3, float(p99), float(throughput),
                         10 * throughput, mean_batch, 0.3)


NONE = report(0, 1, 10.0, 30000.0)


def sweep(p99=(1300, 1290, 1280, 1270), throughput=(11.6, 11.6, 11.6, 11.6), windows=(0, 2, 5, 10)):
    return [report(w, 8, t, p) for w, t, p in zip(windows, throughput, p99)]


def test_batching_pays_and_window_matters_little():
    c = conclude_batching(NONE, sweep() + [report(5, 8, 99.0, 1.0, rate=6.0)])  # another rate: ignored
    assert c.rate == RATE and [r.window_ms for r in c.batched] == [0, 2, 5, 10]
    assert c.pays and not c.window_matters
    # every window within 5% of the best throughput: the lowest p99 (10 ms) at its max batch
    assert c.recommended == BatchingConfig(10.0, 8, RATE)
    lines = c.lines(batch_ms=100)
    assert lines[0].startswith("=> a 5 ms window raises throughput") and "10.00 -> 11.60" in lines[0]
    assert "matters little" in lines[1] and "~100 ms" in lines[1]
    assert "far longer" not in c.lines(batch_ms=5)[1]  # a batch shorter than the window explains nothing


def test_gain_bound_is_strict():
    at_bound = sweep(throughput=(10.5, 10.5, 10.5, 10.5))  # exactly 1.05x the unbatched throughput
    c = conclude_batching(NONE, at_bound)
    assert not c.pays and c.recommended == BatchingConfig(0.0, 1, RATE)
    assert c.lines()[0].startswith("=> batching does not raise throughput here")
    assert conclude_batching(NONE, sweep(throughput=(10.51,) * 4)).pays


def test_no_pay_when_p99_does_not_fall():
    worse = report(0, 1, 10.0, 1280.0)  # unbatched p99 equal to the 5 ms window's: not lower
    assert not conclude_batching(worse, sweep()).pays
    assert conclude_batching(report(0, 1, 10.0, 1280.01), sweep()).pays


def test_window_matters_on_throughput_or_p99_spread():
    # throughput 11 -> 11.55 is exactly 5%: alike; a bit more: matters
    assert not conclude_batching(NONE, sweep(throughput=(11.0, 11.2, 11.3, 11.55))).window_matters
    c = conclude_batching(NONE, sweep(throughput=(11.0, 11.2, 11.3, 11.6)))
    assert c.window_matters and "matters at 12 req/s" in c.lines()[1]
    # the recommendation keeps only windows within 5% of the best throughput (11.6): not 0 ms despite its p99
    c = conclude_batching(NONE, sweep(throughput=(11.0, 11.2, 11.3, 11.6), p99=(900, 1300, 1250, 1280)))
    assert c.recommended == BatchingConfig(5.0, 8, RATE)
    # p99 1000 -> 1250 is exactly 25%: alike; more: matters
    assert not conclude_batching(NONE, sweep(p99=(1000, 1100, 1200, 1250))).window_matters
    assert conclude_batching(NONE, sweep(p99=(1000, 1100, 1200, 1260))).window_matters


def test_span_limits_the_comparison_and_ties_pick_the_shorter_window():
    reports = sweep(windows=(0, 2, 5, 100), p99=(1200, 1200, 1250, 5000))
    c = conclude_batching(NONE, reports)  # 100 ms is outside the default (0, 10) span
    assert [r.window_ms for r in c.in_span()] == [0, 2, 5] and not c.window_matters
    assert c.recommended == BatchingConfig(0.0, 8, RATE)  # 0 and 2 ms tie on p99: the shorter
    assert conclude_batching(NONE, reports, span_ms=(0, 100)).window_matters


def test_refusals():
    with pytest.raises(ValueError, match="window 7 ms"):
        conclude_batching(NONE, sweep(), window_ms=7)
    with pytest.raises(ValueError, match="max batch 1"):
        conclude_batching(report(0, 8, 10.0, 1000.0), sweep())
    with pytest.raises(ValueError, match="min_gain"):
        conclude_batching(NONE, sweep(), min_gain=1.0)
    with pytest.raises(ValueError, match="no batched report with a window in"):
        conclude_batching(NONE, sweep(windows=(5, 20, 50, 100)), span_ms=(0, 2))
    with pytest.raises(ValueError, match="span_ms"):
        conclude_batching(NONE, sweep(), span_ms=(10, 0))


def sample(b, prefill_ms, seconds_ms):
    return BatchSample(b, 700, (700,) * b, (10,) * b, prefill_ms * b / 1e3, (), (), seconds_ms * b / 1e3)


def test_summary_prints_the_facts():
    service = ServiceModel((0.06, 0.0), ((1, 1.0),), (0.003, 0.0, 0.0), ((700, 10),),
                           samples=(sample(1, 60, 100), sample(8, 62, 72)))
    live = [report(5, 8, 8.9, 670, rate=RATE)]
    c = conclude_batching(NONE, sweep() + [report(1, 8, 11.6, 1300)])
    lines = batching_summary(c, service, {1: 10.0, 8: 14.0}, live, [report(5, 8, 8.8, 640)])
    assert lines[0].startswith("12 req/s (1.2x the unbatched capacity), 2000 simulated")
    assert sum("max batch 8, window" in x for x in lines) == 4  # windows 0, 2, 5, 10; not 1
    assert any("replay of the same stream: 8.80 req/s" in x for x in lines)
    assert any(x.startswith("a request costs 72 ms in a batch of 8 vs 100 ms alone (0.72x)") for x in lines)
    assert any("14.00 at max batch 8 (1.40x)" in x for x in lines)
    assert lines[-3:] == c.lines(batch_ms=100)
