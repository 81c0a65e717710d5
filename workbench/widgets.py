"""Widget factories for the notebooks: knob controls and a measure-and-plot explorer.

Notebooks only wire these together. A control change never measures by itself (a measurement
takes seconds); the "Measure" button applies the recipe to a copy of the baseline, measures it,
and redraws the figure with the new point.
"""
from __future__ import annotations

import ipywidgets as W
from IPython.display import display

from .plots import knob_figure
from .prune import METHODS as PRUNE_METHODS
from .prune.base import PATTERNS
from .quant import METHODS as QUANT_METHODS
from .quant.base import ACTIVATIONS, BITS, GROUP_SIZES
from .recipe import Recipe, RecipeError

_STYLE = {"description_width": "110px"}


def prune_controls(method: str = "wanda", ratio: float = 0.5) -> dict[str, W.Widget]:
    """Pruning method, ratio and pattern."""
    return {
        "method": W.Dropdown(options=list(PRUNE_METHODS), value=method, description="method", style=_STYLE),
        "ratio": W.FloatSlider(value=ratio, min=0.0, max=0.9, step=0.05, description="ratio",
                               continuous_update=False, readout_format=".2f", style=_STYLE),
        "pattern": W.ToggleButtons(options=list(PATTERNS), value="unstructured", description="pattern",
                                   style=_STYLE),
    }


def quant_controls(method: str = "rtn", bits: int = 4) -> dict[str, W.Widget]:
    """Quantization method, bits, group size, symmetry and activations."""
    return {
        "method": W.Dropdown(options=list(QUANT_METHODS), value=method, description="method", style=_STYLE),
        "bits": W.Dropdown(options=list(BITS), value=bits, description="bits", style=_STYLE),
        "group_size": W.Dropdown(options=[("per channel", 0)] + [(str(g), g) for g in GROUP_SIZES if g],
                                 value=32, description="group size", style=_STYLE),
        "symmetric": W.Checkbox(value=True, description="symmetric", style=_STYLE),
        "activations": W.Dropdown(options=list(ACTIVATIONS), value="none", description="activations",
                                  style=_STYLE),
    }


def section_from(controls: dict[str, W.Widget]) -> dict:
    """The recipe section the controls describe (only keys the chosen method accepts)."""
    body = {k: w.value for k, w in controls.items()}
    if body.get("method") in ("heads", "channels"):  # structured pruning has no sparsity pattern
        body.pop("pattern", None)
    return body


def knob_explorer(meter, section: str, x_key: str, baseline, points: list, controls=None) -> W.VBox:
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

    return _measure_box(controls, measure, lambda: knob_figure(points, (section, x_key), baseline))


def _measure_box(controls: dict, measure, figure) -> W.VBox:
    """Controls, a Measure button with a status line, and a figure redrawn after each measurement.

    `measure()` measures the controls' setting and returns the status text; a ValueError or
    RuntimeError it raises (a bad setting) is shown in red and measures nothing.
    """
    button = W.Button(description="Measure", button_style="primary", icon="play")
    status = W.HTML()
    plot = W.Output()

    def redraw():
        plot.clear_output(wait=True)
        with plot:
            display(figure())

    def on_click(_):
        button.disabled = True
        status.value = "measuring ..."
        try:
            status.value = measure()
        except (ValueError, RuntimeError) as e:
            status.value = f"<span style='color:#c00'>{e}</span>"
            return
        finally:
            button.disabled = False
        redraw()

    button.on_click(on_click)
    redraw()
    box = W.VBox([W.HBox([W.VBox(list(controls.values())), W.VBox([button, status])]), plot])
    box.measure = lambda: on_click(None)  # for scripted use and tests
    box.controls, box.status = controls, status
    return box


_SWEEP_WINDOWS_MS = (0, 1, 2, 5, 10, 20, 50, 100)


def batching_controls(config=None, max_batch_limit: int = 32) -> dict[str, W.Widget]:
    """Batching window (ms), max batch and arrival rate (requests/s) sliders.

    Args:
        config: a workbench.serve.BatchingConfig for the starting values (default: its defaults).
        max_batch_limit: the max-batch slider's upper end.
    Returns:
        dict of the three sliders, keyed by the recipe's batching names.
    """
    from .serve import BatchingConfig  # imported here: the serve knob is optional for the other widgets

    config = config or BatchingConfig()
    return {
        "window_ms": W.FloatSlider(value=config.window_ms, min=0.0, max=100.0, step=1.0, description="window (ms)",
                                   continuous_update=False, readout_format=".0f", style=_STYLE),
        "max_batch": W.IntSlider(value=config.max_batch, min=1, max=max_batch_limit, description="max batch",
                                 continuous_update=False, style=_STYLE),
        "arrival_rate": W.FloatSlider(value=config.arrival_rate, min=0.5, max=40.0, step=0.5,
                                      description="rate (req/s)", continuous_update=False, readout_format=".1f",
                                      style=_STYLE),
    }


def batching_explorer(service, *, config=None, n_requests: int = 1000, seed: int = 0, live=(),
                      windows_ms=_SWEEP_WINDOWS_MS) -> W.VBox:
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
    Returns:
        The widget box (display it); `box.update()` re-simulates, `box.report` is the latest report.
    """
    from .plots import serving_figure
    from .serve import BatchingConfig, simulate

    controls = batching_controls(config)
    readout = W.HTML()
    plot = W.Output()
    box = W.VBox([W.HBox([W.VBox(list(controls.values())), readout]), plot])

    def update(_=None):
        try:
            cfg = BatchingConfig(**{k: w.value for k, w in controls.items()})
        except ValueError as e:
            readout.value = f"<span style='color:#c00'>{e}</span>"
            return
        rep = simulate(cfg, service, n_requests, seed)
        sweep = [rep if w == cfg.window_ms else
                 simulate(BatchingConfig(float(w), cfg.max_batch, cfg.arrival_rate), service, n_requests, seed)
                 for w in sorted(set(windows_ms) | {cfg.window_ms})]
        box.report = rep
        readout.value = (f"<b>simulated</b> ({rep.n} requests): p50 {rep.p50_ms:.0f} ms, p99 {rep.p99_ms:.0f} ms, "
                         f"{rep.throughput_rps:.2f} req/s, {rep.tokens_per_s:.0f} tokens/s, "
                         f"mean batch {rep.mean_batch:.2f}, queue wait {rep.queue_wait_share:.0%} of latency")
        points = [r for r in live if r.arrival_rate == cfg.arrival_rate and r.max_batch == cfg.max_batch]
        plot.clear_output(wait=True)
        with plot:
            display(serving_figure(sweep, points, mark_window=cfg.window_ms,
                                   title=f"simulated window sweep at {cfg.arrival_rate:g} req/s, "
                                         f"max batch {cfg.max_batch}"))

    for w in controls.values():
        w.observe(update, names="value")
    box.controls, box.readout, box.update = controls, readout, update
    update()
    return box


def cache_controls(config=None) -> dict[str, W.Widget]:
    """KV-cache policy, sliding window and sinks, prefix-cache capacity and eviction.

    Args:
        config: a workbench.cache.CacheConfig for the starting values (default: its defaults).
    Returns:
        dict of controls keyed by the recipe's cache names.
    """
    from .cache import EVICTIONS, POLICIES, CacheConfig

    config = config or CacheConfig()
    return {
        "policy": W.Dropdown(options=list(POLICIES), value=config.policy, description="policy", style=_STYLE),
        "window": W.IntSlider(value=config.window, min=32, max=1024, step=32, description="window (tokens)",
                              continuous_update=False, style=_STYLE),
        "sinks": W.IntSlider(value=config.sinks, min=0, max=16, description="sinks", continuous_update=False,
                             style=_STYLE),
        "prefix_capacity_mb": W.FloatSlider(value=config.prefix_capacity_mb, min=0, max=128, step=2,
                                            description="prefix MiB", continuous_update=False,
                                            readout_format=".0f", style=_STYLE),
        "eviction": W.ToggleButtons(options=list(EVICTIONS), value=config.eviction, description="eviction",
                                    style=_STYLE),
    }


def cache_explorer(model, tokenizer, steps, records: list, controls=None) -> W.VBox:
    """Controls for the KV-cache knob, a Measure button, and the cache figure that gains each setting.

    Args:
        model, tokenizer: the model to measure.
        steps: task Steps in episode order (a few episodes keep a measurement to seconds).
        records: CacheRecords already measured (appended to in place).
        controls: the control dict (default: cache_controls()).
    Returns:
        The widget box (display it); `.measure()` runs the button's action.
    """
    from .cache import CacheConfig
    from .measure.cache import measure_cache
    from .plots import cache_figure

    controls = controls or cache_controls()

    def measure():
        config = CacheConfig(**{k: w.value for k, w in controls.items()})  # ValueError: shown, not measured
        rec, _ = measure_cache(model, tokenizer, steps, config, progress=False)
        records.append(rec)
        return (f"{rec.label}: step accuracy {rec.step:.3f}, KV {rec.kv_bytes / 2**20:.2f} MiB, "
                f"prefill {rec.prefill_ms_mean:.1f} ms/step, decode {rec.decode_ms_per_token.median:.2f} "
                f"ms/token, prefix hit rate {rec.prefix_hit_rate:.2f}")

    return _measure_box(controls, measure, lambda: cache_figure(records))
