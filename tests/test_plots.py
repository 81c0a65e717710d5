"""Pure plot functions: figures built from records, checked without a browser."""
from dataclasses import dataclass, field

import plotly.graph_objects as go
import pytest

from workbench.plots import screen_figure


def _step(eval_steps, kind):
    return next(s for s in eval_steps if s.action.type == kind)


def test_screen_figure_marks_target_and_model(eval_steps):
    step = _step(eval_steps, "Tap")
    wrong = 'do(action="Tap", element=[5,5])'
    fig = screen_figure(step, wrong)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert any(n.startswith("target: Tap") for n in names)
    assert "model: Tap [5, 5]" in names
    target = next(t for t in fig.data if t.name.startswith("target"))
    assert (target.x[0], target.y[0]) == step.action.element
    # one rectangle per drawn element plus the green target box; y axis runs downward like the phone
    assert len(fig.layout.shapes) >= 8
    assert tuple(fig.layout.yaxis.range) == (999, 0)


def test_screen_figure_without_output_and_with_garbage(eval_steps):
    step = _step(eval_steps, "Swipe")
    fig = screen_figure(step)
    assert [t.name for t in fig.data][1].startswith("target: Swipe")
    assert len(fig.data) == 2
    assert len(screen_figure(step, "not an action").data) == 2  # unparseable output adds nothing


def test_screen_figure_for_a_non_pointing_action(eval_steps):
    step = _step(eval_steps, "Launch")
    fig = screen_figure(step, step.target)
    assert any(t.name.startswith('model: do(action="Launch"') for t in fig.data)


# --- batching (workbench.serve) ------------------------------------------------------------------

def _serving_records():
    from workbench.serve import BatchingConfig, BatchSample, ServiceModel, simulate

    svc = ServiceModel((0.05, 0.15), ((1, 0.9), (4, 1.0)), (0.003, 0.0007, 0.0), ((700, 12), (900, 14)),
                       samples=(BatchSample(1, 700, (700,), (12,), 0.1, (0.004,) * 12, (1,) * 12, 0.15),
                                BatchSample(4, 900, (700, 900, 700, 900), (12, 14, 12, 14), 0.5,
                                            (0.006,) * 14, (4,) * 12 + (2, 2), 0.6)))
    sims = [simulate(BatchingConfig(w, 4, r), svc, 200, seed=0) for r in (2.0, 5.0) for w in (0, 5, 20)]
    live = [simulate(BatchingConfig(5, 4, 2.0), svc, 20, seed=1)]
    return svc, sims, live


def test_serving_figure_lines_per_rate_and_live_markers():
    from workbench.plots import serving_figure

    _, sims, live = _serving_records()
    fig = serving_figure(sims, live, mark_window=5)
    assert isinstance(fig, go.Figure)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 2 * 3  # per rate: p50, p99, throughput
    p50 = next(t for t in lines if t.name == "2 req/s" and t.line.dash == "solid" and t.xaxis == "x")
    assert list(p50.x) == [0, 5, 20] and p50.y[1] == sims[1].p50_ms
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 2 and list(markers[0].y) == [live[0].p50_ms, live[0].p99_ms]
    assert markers[0].marker.color == p50.line.color  # live points wear their rate's colour
    assert fig.layout.yaxis.type == "log" and len(fig.layout.shapes) == 2


def test_service_and_latency_figures():
    from workbench.plots import latency_cdf_figure, service_figure

    svc, sims, live = _serving_records()
    fig = service_figure(svc)
    measured = fig.data[0]
    assert list(measured.x) == [1, 4] and measured.y[1] == 600 / 4
    assert list(fig.data[2].x) == [1, 2, 4]  # decode steps by rows still decoding
    cdf = latency_cdf_figure([live[0], sims[1]])
    assert len(cdf.data) == 2 and cdf.data[0].y[-1] == 1.0 and cdf.data[0].line.dash == "dash"
    assert list(cdf.data[0].x) == sorted(cdf.data[0].x)


def _cache_record(label, kv, step, prefix=False):
    from workbench.measure import Spread
    from workbench.measure.cache import CacheRecord

    s = Spread(10.0, 12.0, 4)
    return CacheRecord(label, {"policy": label.split()[0]}, 4, step, 1.0, kv, kv / 100, s, 11.0, s, s, 50.0,
                       1.0 if prefix else 0.0, 200 if prefix else 0, 0.5 if prefix else 0.0, 10**6 if prefix else 0,
                       (1.0,) * 4 if prefix else (), (0.4, 0.6, 0.7, 0.8) if prefix else (0.0,) * 4)


def test_cache_figure_one_point_per_setting_per_panel_and_baseline():
    from workbench.plots import cache_figure

    recs = [_cache_record("full", 2 * 2**20, 0.8), _cache_record("int8", 2**19, 0.75),
            _cache_record("full + prefix 64MB lru", 2 * 2**20, 0.8, prefix=True)]
    fig = cache_figure(recs)
    assert len(fig.data) == 3 * 3
    assert [t.name for t in fig.data[::3]] == ["full", "int8", "full + prefix 64MB lru"]
    assert fig.data[3].x == (0.5,) and fig.data[3].y == (0.75,)  # int8: MiB on x, step accuracy
    assert len(fig.layout.shapes) == 3  # the baseline's dashed line on each panel


def test_prefix_stream_figure_traces_reuse_and_hit_rate():
    from workbench.plots import prefix_stream_figure

    fig = prefix_stream_figure([_cache_record("full + prefix 2MB lru", 1, 0.8, prefix=True)])
    assert [t.mode for t in fig.data] == ["markers", "lines"]
    assert fig.data[0].y == (0.4, 0.6, 0.7, 0.8) and fig.data[1].x == (1, 2, 3, 4)


# --- the dashboard's trade-off (workbench.plots.tradeoff_figure) ---------------------------------------
def _points(fake_meter):
    base = fake_meter({})
    hand = [fake_meter({"prune": {"method": "magnitude", "ratio": r}}) for r in (0.2, 0.5)]
    hand.append(fake_meter({"cache": {"policy": "int8"}}))
    sweep = [fake_meter({"quant": {"method": "rtn", "bits": b}}) for b in (8, 4, 3)]
    return base, hand, sweep


def test_tradeoff_figure_groups_marks_and_draws_the_front(fake_meter):
    from workbench.measure.pareto import pareto_front
    from workbench.plots import knob_group, tradeoff_figure

    base, hand, sweep = _points(fake_meter)
    fig = tradeoff_figure(hand, base, sweep=sweep, current=hand[0])
    names = [t.name for t in fig.data]
    assert names[:3] == ["prune (hand)", "cache (hand)", "quant (sweep)"]
    assert "baseline" in names and "current" in names
    prune, quant = fig.data[0], fig.data[2]
    assert list(prune.x) == [p.decode_ms.median for p in hand[:2]] and list(prune.y) == [p.step for p in hand[:2]]
    assert prune.marker.symbol == "circle" and quant.marker.symbol == "diamond"
    sizes = dict(zip([p.memory_bytes for p in sweep], quant.marker.size))
    assert sizes[max(sizes)] > sizes[min(sizes)]  # bigger memory, bigger marker
    assert '"bits": 4' in quant.hovertext[1] and "p90" in quant.hovertext[1]  # recipe and spread on hover
    front = next(t for t in fig.data if t.name.startswith("Pareto front"))
    want = sorted(pareto_front([*hand, *sweep, base]), key=lambda p: p.decode_ms.median)
    assert list(front.x) == [p.decode_ms.median for p in want]
    assert list(front.x) == sorted(front.x) and front.name == f"Pareto front ({len(want)})"
    assert knob_group(fake_meter({"prune": {"method": "magnitude", "ratio": 0.1},
                                  "quant": {"method": "rtn", "bits": 8}})) == "prune+quant"
    assert [t.name for t in tradeoff_figure([], None).data] == []  # nothing measured yet: an empty plot


def test_knob_view_and_table(fake_meter):
    from workbench.plots import knob_view_figure, points_frame

    base, hand, _ = _points(fake_meter)
    fig = knob_view_figure(hand[:2], "prune", "ratio", base)
    assert len(fig.data) == 3 and list(fig.data[0].x) == [0.2, 0.5]
    assert list(fig.data[0].y) == [p.step for p in hand[:2]]
    assert len(fig.layout.shapes) == 3  # the baseline on each panel
    import dataclasses

    serving = dataclasses.replace(fake_meter({"batching": {"window_ms": 5, "max_batch": 4, "arrival_rate": 2}}),
                                  serving={"p99_ms": 120.0})
    assert len(knob_view_figure([serving], "batching", "window_ms").data) == 4  # + simulated p99
    frame = points_frame(hand)
    assert list(frame["recipe"]) == [p.label for p in hand] and frame["memory MiB"].iloc[0] > 0


# --- the trade-off tells the truth: intervals, KL, the target's latency (stand-in points) ------------
@dataclass(frozen=True)
class Stand:
    """A stand-in Point with the 90% Wilson interval and, optionally, a decode figure at a target."""

    label: str
    step: float
    n: int = 12
    ms: float = 10.0
    kl: float = 0.0
    recipe: dict = field(default_factory=dict)
    target: dict | None = None
    engine: str = "onnxruntime-fused"
    weight_bytes: int = 2**20
    kv_bytes: int = 0
    serving: dict | None = None

    @property
    def step_interval(self):
        from workbench.measure.records import wilson_interval

        return wilson_interval(round(self.step * self.n), self.n)

    @property
    def memory_bytes(self):
        return self.weight_bytes + self.kv_bytes

    @property
    def decode_ms(self):
        from workbench.measure import Spread

        return Spread(self.ms, self.ms * 1.2, 3)

    @property
    def prefill_ms(self):
        from workbench.measure import Spread

        return Spread(40.0, 44.0, 3)


METHOD = "measured at 2 and 4 layers, linear in depth"


def _at(ms, name="autoglm-phone-9b"):
    return {"name": name, "decode_ms_per_token": ms, "decode_ms_per_token_p90": ms * 1.5, "method": METHOD,
            "engine": "onnxruntime-fused"}


def _stands():
    base = Stand("baseline", 8 / 12, ms=20.0, target=_at(200.0))
    pruned = Stand("magnitude 0.5", 9 / 12, ms=20.0, kl=0.05, recipe={"prune": {"ratio": 0.5}}, target=_at(150.0))
    quant = Stand("rtn 4b", 7 / 12, ms=12.0, kl=0.02, recipe={"quant": {"bits": 4}}, target=_at(90.0))
    bare = Stand("rtn 8b", 0.5, ms=15.0, kl=0.01, recipe={"quant": {"bits": 8}})
    return base, pruned, quant, bare


def test_tradeoff_error_bars_are_the_wilson_intervals():
    from workbench.plots import tradeoff_figure

    base, pruned, quant, bare = _stands()
    fig = tradeoff_figure([pruned], base, sweep=[quant, bare], model="open-autoglm-tiny")
    prune = next(t for t in fig.data if t.name == "prune (hand)")
    low, high = pruned.step_interval
    assert prune.error_y.array == pytest.approx([high - pruned.step])
    assert prune.error_y.arrayminus == pytest.approx([pruned.step - low]) and not prune.error_y.symmetric
    assert prune.error_x.array == pytest.approx([pruned.decode_ms.p90 - pruned.decode_ms.median])
    star = next(t for t in fig.data if t.name == "baseline")
    assert star.error_y.array[0] == pytest.approx(base.step_interval[1] - base.step)
    assert "step 0.750 [" in prune.hovertext[0] and "90% CI, n=12" in prune.hovertext[0]
    assert fig.layout.yaxis.title.text == "step accuracy (90% Wilson interval)"
    assert fig.layout.xaxis.title.text == "decode ms/token on this machine, open-autoglm-tiny (onnxruntime-fused)"


def test_tradeoff_front_ties_overlapping_accuracy():
    from workbench.plots import tradeoff_figure

    base, pruned, quant, _ = _stands()
    front = next(t for t in tradeoff_figure([pruned], base).data if t.name.startswith("Pareto front"))
    assert front.name == "Pareto front (2)"  # 0.75 of 12 overlaps 0.667 of 12: no better than the baseline
    front = next(t for t in tradeoff_figure([pruned], base, sweep=[quant]).data if t.name.startswith("Pareto"))
    assert list(front.x) == [quant.ms]  # tied on accuracy and faster: the 4-bit point beats both


def test_tradeoff_with_kl_on_y():
    from workbench.plots import tradeoff_figure

    base, pruned, quant, bare = _stands()
    fig = tradeoff_figure([pruned], base, sweep=[quant, bare], y="kl")
    quants = next(t for t in fig.data if t.name == "quant (sweep)")
    assert list(quants.y) == [quant.kl, bare.kl] and quants.error_y.array is None
    assert fig.layout.yaxis.title.text == "KL to the baseline (nats/token, lower is better)"
    assert fig.layout.yaxis.type in (None, "linear", "-")
    front = next(t for t in fig.data if t.name.startswith("Pareto front"))
    assert list(front.y) == [quant.kl, bare.kl, base.kl]  # by KL: the baseline (0) and the faster, closer ones
    with pytest.raises(ValueError):
        tradeoff_figure([pruned], base, y="ppl")


def test_tradeoff_at_a_target_uses_its_latency_and_drops_points_without_one():
    from workbench.plots import points_frame, tradeoff_figure

    base, pruned, quant, bare = _stands()
    other = Stand("elsewhere", 0.5, recipe={"quant": {"bits": 3}}, target=_at(50.0, name="another-model"))
    fig = tradeoff_figure([pruned], base, sweep=[quant, bare, other], current=bare, target="autoglm-phone-9b")
    quants = next(t for t in fig.data if t.name == "quant (sweep)")
    assert list(quants.x) == [90.0] and quants.error_x.array == pytest.approx([45.0])
    assert "current" not in [t.name for t in fig.data]
    assert fig.layout.xaxis.title.text == f"decode ms/token at autoglm-phone-9b (onnxruntime-fused, {METHOD})"
    assert "2 points without a figure at autoglm-phone-9b left out" in fig.layout.title.text
    front = next(t for t in fig.data if t.name.startswith("Pareto front"))
    assert list(front.x) == [90.0]  # the same x as the markers
    assert "at autoglm-phone-9b: decode 90.00 ms/token" in quants.hovertext[0] and METHOD in quants.hovertext[0]
    frame = points_frame([pruned, base])
    low, high = pruned.step_interval
    assert frame["step 90% CI"].iloc[0] == f"[{low:.2f}, {high:.2f}]"
