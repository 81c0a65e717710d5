"""Knob explorers: a knob's controls, a Measure button and a figure that gains a point per measurement.

A control change never measures by itself (a measurement takes seconds); "Measure" applies the
recipe to a copy of the baseline, measures it, and redraws the figure with the new point.
"""
from __future__ import annotations

import ipywidgets as W
from IPython.display import display

from ..cache import CacheConfig
from ..measure.cache import measure_cache
from ..plots import cache_figure, knob_figure, serving_figure
from ..recipe import Recipe, RecipeError
from ..serve import BatchingConfig, simulate
from .controls import batching_controls, cache_controls, prune_controls, quant_controls, section_from


def knob_explorer(meter, section: str, x_key: str, baseline, points: list, controls=None) -> MeasureBox:
    """Controls for one knob, a Measure button, and the 2x2 trade-off figure that gains each point.

    Args:
        meter: a workbench.measure.point.PointMeter bound to the baseline and steps.
        section: "prune" or "quant".
        x_key: the knob on the x axis, e.g. "ratio" or "bits".
        baseline: the baseline Point.
        points: list of Points already measured (appended to in place).
        controls: the control dict (default: prune_controls() or quant_controls()).
    Returns:
        The widget box (display it).
    """
    controls = controls or (prune_controls() if section == "prune" else quant_controls())
    if getattr(meter, "screens", None) is None:  # a text model: nothing for a scope to choose
        controls.pop("scope", None)

    def measure():
        try:
            recipe = Recipe.from_json({section: section_from(controls)})
        except RecipeError as e:
            raise ValueError(str(e)) from None
        point = meter(recipe)
        points.append(point)
        return (f"{point.label}: step accuracy {point.step:.3f}, KL {point.kl:.4f}, "
                f"decode {point.decode_ms.median:.2f} ms/token, "
                f"{point.weight_bytes / 2**20:.2f} MiB ({point.seconds:.0f} s)")

    return MeasureBox(controls, measure, lambda: knob_figure(points, (section, x_key), baseline))


class MeasureBox(W.VBox):
    """Controls, a Measure button with a status line, and a figure redrawn after each measurement.

    `measure_fn()` measures the controls' setting and returns the status text; a ValueError or
    RuntimeError it raises (a bad setting) is shown in red and measures nothing.

    Attributes:
        controls: the control dict; status: the status line (HTML).
    """

    def __init__(self, controls: dict, measure_fn, figure_fn):
        self.controls, self._measure_fn, self._figure_fn = controls, measure_fn, figure_fn
        self.button = W.Button(description="Measure", button_style="primary", icon="play")
        self.status, self._plot = W.HTML(), W.Output()
        super().__init__([W.HBox([W.VBox(list(controls.values())), W.VBox([self.button, self.status])]), self._plot])
        self.button.on_click(lambda _: self.measure())
        self._redraw()

    def measure(self) -> None:
        """What the button does: measure the controls' setting, then redraw (scripted use and tests)."""
        self.button.disabled = True
        self.status.value = "measuring ..."
        try:
            self.status.value = self._measure_fn()
        except (ValueError, RuntimeError) as e:
            self.status.value = f"<span style='color:#c00'>{e}</span>"
            return
        finally:
            self.button.disabled = False
        self._redraw()

    def _redraw(self) -> None:
        self._plot.clear_output(wait=True)
        with self._plot:
            display(self._figure_fn())


_SWEEP_WINDOWS_MS = (0, 1, 2, 5, 10, 20, 50, 100)


class BatchingExplorer(W.VBox):
    """Sliders for the batching knob, a readout of the simulated report, and the window-sweep figure.

    Every slider change re-simulates (replay over the measured service times, well under a second):
    the readout shows the chosen setting's report, the figure a sweep over windows at the chosen rate
    and max batch with the chosen window marked, and any live reports at that rate and max batch.

    Args:
        service: a workbench.serve.ServiceModel measured on the model.
        config: starting BatchingConfig (default: its defaults).
        n_requests: requests per simulated stream.
        seed: seed of the arrival stream.
        live: live ServingReports to overlay where rate and max batch match.
        windows_ms: windows of the sweep drawn in the figure.
    Attributes:
        controls, readout; report: the latest simulated report; `update()` re-simulates.
    """

    def __init__(self, service, *, config=None, n_requests: int = 1000, seed: int = 0, live=(),
                 windows_ms=_SWEEP_WINDOWS_MS):
        self.service, self.n_requests, self.seed, self.live, self.windows_ms = service, n_requests, seed, live, windows_ms
        self.controls, self.readout, self._plot, self.report = batching_controls(config), W.HTML(), W.Output(), None
        super().__init__([W.HBox([W.VBox(list(self.controls.values())), self.readout]), self._plot])
        for w in self.controls.values():
            w.observe(self.update, names="value")
        self.update()

    def update(self, _=None) -> None:
        """Re-simulate the controls' setting and redraw (a bad setting is shown, nothing simulated)."""
        try:
            cfg = BatchingConfig(**{k: w.value for k, w in self.controls.items()})
        except ValueError as e:
            self.readout.value = f"<span style='color:#c00'>{e}</span>"
            return
        rep = simulate(cfg, self.service, self.n_requests, self.seed)
        sweep = [rep if w == cfg.window_ms else simulate(BatchingConfig(float(w), cfg.max_batch, cfg.arrival_rate),
                                                         self.service, self.n_requests, self.seed)
                 for w in sorted(set(self.windows_ms) | {cfg.window_ms})]
        self.report = rep
        self.readout.value = (f"<b>simulated</b> ({rep.n} requests): p50 {rep.p50_ms:.0f} ms, p99 {rep.p99_ms:.0f} ms, "
                              f"{rep.throughput_rps:.2f} req/s, {rep.tokens_per_s:.0f} tokens/s, "
                              f"mean batch {rep.mean_batch:.2f}, queue wait {rep.queue_wait_share:.0%} of latency")
        points = [r for r in self.live if r.arrival_rate == cfg.arrival_rate and r.max_batch == cfg.max_batch]
        self._plot.clear_output(wait=True)
        with self._plot:
            display(serving_figure(sweep, points, mark_window=cfg.window_ms,
                                   title=f"simulated window sweep at {cfg.arrival_rate:g} req/s, "
                                         f"max batch {cfg.max_batch}"))


def batching_explorer(service, **kwargs) -> BatchingExplorer:
    """The batching explorer of notebook 03 (see `BatchingExplorer`; keyword arguments as there)."""
    return BatchingExplorer(service, **kwargs)


def cache_explorer(model, tokenizer, steps, records: list, controls=None) -> MeasureBox:
    """Controls for the KV-cache knob, a Measure button, and the cache figure that gains each setting.

    Args:
        model, tokenizer: the model to measure.
        steps: task Steps in episode order (a few episodes keep a measurement to seconds).
        records: CacheRecords already measured (appended to in place).
        controls: the control dict (default: cache_controls()).
    Returns:
        The widget box (display it); `.measure()` runs the button's action.
    """

    controls = controls or cache_controls()

    def measure():
        config = CacheConfig(**{k: w.value for k, w in controls.items()})  # ValueError: shown, not measured
        rec, _ = measure_cache(model, tokenizer, steps, config, progress=False)
        records.append(rec)
        return (f"{rec.label}: step accuracy {rec.step:.3f}, KV {rec.kv_bytes / 2**20:.2f} MiB, "
                f"prefill {rec.prefill_ms_mean:.1f} ms/step, decode {rec.decode_ms_per_token.median:.2f} "
                f"ms/token, prefix hit rate {rec.prefix_hit_rate:.2f}")

    return MeasureBox(controls, measure, lambda: cache_figure(records))
