"""Widget factories for the notebooks: knob controls and a measure-and-plot explorer.

Notebooks only wire these together. A control change never measures by itself (a measurement
takes seconds); the "Measure" button applies the recipe to a copy of the baseline, measures it,
and redraws the figure with the new point.
"""
from __future__ import annotations

import threading

import ipywidgets as W
from IPython.display import display

from .plots import knob_figure
from .prune import METHODS as PRUNE_METHODS
from .prune.base import PATTERNS
from .quant import METHODS as QUANT_METHODS
from .quant.base import ACTIVATIONS, BITS, GROUP_SIZES
from .recipe import Recipe, RecipeError, is_default_cache

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


# --- the dashboard: every knob, the measured trade-off, the Pareto front, export ----------------------
def dashboard_controls() -> dict[str, W.Widget]:
    """All four knobs, keyed "section.key": the knob explorers' controls, a method "none" added to
    pruning and quantization and an on/off box to batching (off: the section is left out)."""
    sections = {"prune": prune_controls(ratio=0.3), "quant": quant_controls(), "cache": cache_controls(),
                "batching": {"on": W.Checkbox(value=False, description="simulate batching", style=_STYLE),
                             **batching_controls()}}
    for section in ("prune", "quant"):
        method = sections[section]["method"]
        method.options = ["none", *method.options]
        method.value = "none"
    return {f"{s}.{k}": w for s, controls in sections.items() for k, w in controls.items()}


def recipe_from_controls(controls: dict) -> dict:
    """The recipe dict the dashboard controls describe (sections left at their defaults are left out)."""
    by: dict[str, dict] = {}
    for name, w in controls.items():
        section, key = name.split(".")
        by.setdefault(section, {})[key] = w
    recipe = {s: section_from(by[s]) for s in ("prune", "quant") if by[s]["method"].value != "none"}
    if "prune" in recipe:
        recipe["prune"]["ratio"] = round(recipe["prune"]["ratio"], 4)  # a slider's float noise is not a new point
    cache = section_from(by["cache"])
    if not is_default_cache(cache):
        recipe["cache"] = cache
    batching = section_from(by["batching"])
    if batching.pop("on"):
        recipe["batching"] = batching
    return recipe


def _related(points, recipe: dict, section: str, key: str) -> list:
    """Points whose recipe equals `recipe` except for `section.key`."""
    def rest(r):
        r = {s: dict(b) for s, b in r.items()}
        r.get(section, {}).pop(key, None)
        return r
    want = rest(recipe)
    return [p for p in points if section in p.recipe and rest(p.recipe) == want]


class Dashboard(W.VBox):
    """The trade-off explorer (build it with `dashboard(...)`): all four knobs, the model and episode
    file, the measured points on a Pareto plot, a per-knob view, a table and an export button.

    Every control change asks for the point of the recipe the controls describe: it comes from the
    results store when it was measured before (also by a sweep, also in an earlier kernel), else it
    is measured (a progress bar; Cancel stops it and keeps nothing) and stored. With `threaded`, the
    measurement runs beside the kernel so the controls stay live; changes made meanwhile are
    merged into one next request. `wait()` blocks until the queue is empty (scripts, nbval).
    """

    def __init__(self, meter, store=None, *, threaded: bool = True, export_dir=None, source=None, episodes=None,
                 limit: int | None = None):
        import plotly.graph_objects as go

        self.meter, self.store, self.threaded = meter, store, threaded
        self.export_dir = export_dir
        self.controls = dashboard_controls()
        self.model_path = W.Text(value=str(source or ""), placeholder="open-autoglm-tiny (default)",
                                 description="model", style=_STYLE)
        self.episodes_path = W.Text(value=str(episodes or ""), placeholder="data/episodes/eval.jsonl (default)",
                                    description="episodes", style=_STYLE)
        self.limit = W.BoundedIntText(value=limit or len(meter.steps), min=1, max=10000, description="steps",
                                      style=_STYLE)
        self.load_button = W.Button(description="Load", icon="folder-open")
        self.readout = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="260px"))
        self.cancel_button = W.Button(description="Cancel", icon="stop", disabled=True)
        self.figure = go.FigureWidget()
        self.knob_view = go.FigureWidget()
        self.selection = W.SelectMultiple(options=[], rows=6, description="points", style=_STYLE,
                                          layout=W.Layout(width="420px"))
        self.table = W.HTML()
        self.export_button = W.Button(description="Export this point", icon="download", button_style="success")
        self.export_status = W.HTML()
        self.current = self.baseline = None
        self.hand, self.sweep = [], []
        self.moved = ("prune", "ratio")
        self._lock, self._cancel = threading.Lock(), threading.Event()
        self._pending, self._busy, self._quiet, self._thread = None, False, False, None

        tabs = W.Tab(children=[W.VBox([self.controls[k] for k in self.controls if k.startswith(s)])
                               for s in ("prune.", "quant.", "cache.", "batching.")])
        for i, name in enumerate(("pruning", "quantization", "KV cache", "batching")):
            tabs.set_title(i, name)
        source_row = W.HBox([self.model_path, self.episodes_path, self.limit, self.load_button])
        status_row = W.HBox([self.progress, self.cancel_button, self.readout])
        table_row = W.HBox([self.selection, W.VBox([self.export_button, self.export_status])])
        super().__init__([source_row, tabs, status_row, self.figure, self.knob_view, table_row, self.table])

        for name, w in self.controls.items():
            w.observe(lambda change, name=name: self._on_change(name), names="value")
        self.cancel_button.on_click(lambda _: self._cancel.set())
        self.load_button.on_click(lambda _: self._submit(("load", None)))
        self.export_button.on_click(lambda _: self._submit(("export", self.current)))
        self.selection.observe(lambda _: self._draw_table(), names="value")
        self._enable()
        self._submit(("start", None))

    # -- requests --------------------------------------------------------------------------------
    def _on_change(self, name: str) -> None:
        self._enable()
        if self._quiet:
            return
        section, key = name.split(".")
        if key not in ("method", "on"):
            self.moved = (section, key)
        self.request()

    def request(self, recipe: dict | None = None) -> None:
        """Ask for the point of `recipe` (default: what the controls describe)."""
        recipe = recipe_from_controls(self.controls) if recipe is None else recipe
        try:
            recipe = Recipe.from_json(recipe).to_json()
        except RecipeError as e:
            self.readout.value = f"<span style='color:#c00'>{e}</span>"
            return
        self._submit(("point", recipe))

    def apply(self, recipe: dict, wait: bool = True) -> None:
        """Set the controls to `recipe` (missing sections: off) and ask for its point."""
        defaults = dashboard_controls()
        self._quiet = True
        try:
            for name, w in self.controls.items():
                section, key = name.split(".")
                body = recipe.get(section)
                if key == "method":
                    w.value = body["method"] if body else "none"
                elif key == "on":
                    w.value = body is not None
                else:
                    w.value = body.get(key, defaults[name].value) if body else defaults[name].value
        finally:
            self._quiet = False
        self._enable()
        self.request()
        if wait:
            self.wait()

    def refresh(self, wait: bool = True) -> None:
        """Re-read the store (e.g. after a sweep) and redraw."""
        self._submit(("start", None))
        if wait:
            self.wait()

    def _submit(self, job) -> None:
        with self._lock:
            self._pending = job
            if self._busy:  # the running job finishes (and is stored); this one runs next
                return
            self._busy = True
        if self.threaded:
            self._thread = threading.Thread(target=self._drain, daemon=True)
            self._thread.start()
        else:
            self._drain()

    def wait(self, timeout: float | None = None) -> None:
        """Block until every requested point is on the figure."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _drain(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._busy = False
                    return
            self._cancel.clear()
            try:
                getattr(self, f"_do_{job[0]}")(job[1])
            except Exception as e:  # noqa: BLE001 - shown in the readout, the dashboard stays usable
                self.readout.value = f"<span style='color:#c00'>{type(e).__name__}: {e}</span>"
            finally:
                self.cancel_button.disabled = True

    # -- jobs (run in the worker) ----------------------------------------------------------------
    def _tick(self, done: int, total: int) -> None:
        from .measure.point import Cancelled

        self.progress.max, self.progress.value = max(total, 1), done
        if self._cancel.is_set():
            raise Cancelled

    def _do_start(self, _) -> None:
        from .measure.point import Point
        from .store import cached_point, stored_entries

        self.readout.value = "measuring the baseline ..."
        self.baseline, _ = cached_point(self.meter, {}, self.store, on_progress=self._tick)
        entries = stored_entries(self.store, self.meter) if self.store is not None else []
        self.hand = [Point.from_json(e.record) for e in entries if e.origin == "hand" and e.recipe]
        self.sweep = [Point.from_json(e.record) for e in entries if e.origin != "hand"]
        self.current = self.baseline
        self.readout.value = (f"baseline: step accuracy {self.baseline.step:.3f} on {self.baseline.n} steps, "
                              f"{len(self.hand)} hand-picked and {len(self.sweep)} sweep points from the store")
        self._redraw()

    def _do_load(self, _) -> None:
        from .measure.point import PointMeter

        self.readout.value = "loading ..."
        self.meter = PointMeter.load(self.model_path.value.strip() or None, self.episodes_path.value.strip() or None,
                                     limit=self.limit.value, latency_repeats=self.meter.latency_repeats)
        self._do_start(None)

    def _do_point(self, recipe: dict) -> None:
        import time

        from .measure.point import Cancelled
        from .store import cached_point

        t0 = time.perf_counter()
        self.cancel_button.disabled = False
        self.readout.value = "measuring ..."
        try:
            point, hit = cached_point(self.meter, recipe, self.store, on_progress=self._tick)
        except Cancelled:
            self.readout.value = "cancelled: nothing was stored"
            return
        if point.recipe and all(p.recipe != point.recipe for p in self.hand + self.sweep):
            self.hand.append(point)
        self.current = point
        self._redraw()
        how = "from the store" if hit else f"measured ({point.engine})"
        self.readout.value = (f"<b>{point.label}</b>: step accuracy {point.step:.3f} (n={point.n}), "
                              f"decode {point.decode_ms.median:.2f} ms/token (p90 {point.decode_ms.p90:.2f}), "
                              f"memory {point.memory_bytes / 2**20:.2f} MiB; {how} in "
                              f"{time.perf_counter() - t0:.2f} s")
        self.progress.value = self.progress.max

    def _do_export(self, point) -> None:
        import re
        import tempfile
        from pathlib import Path

        from .export import export_onnx

        if point is None:
            self.export_status.value = "measure a point first"
            return
        self.export_button.disabled = True
        try:
            root = Path(self.export_dir or tempfile.mkdtemp(prefix="autoglm-export-"))
            out = root / (re.sub(r"[^A-Za-z0-9.]+", "-", point.label).strip("-") or "baseline")
            self.export_status.value = f"exporting {point.label} to {out} ..."
            result = export_onnx(out, point.recipe or None, source=getattr(self.meter, "source", None),
                                 overwrite=True, progress=False)
            self.export_status.value = (f"exported to <code>{result.path}</code>: parity gate passed, "
                                        f"ONNX Runtime {result.latency_onnxruntime.decode_ms_per_token.median:.2f} "
                                        f"ms/token")
        except Exception as e:  # noqa: BLE001 - a failed gate or a bad recipe is shown, nothing is written
            self.export_status.value = f"<span style='color:#c00'>export failed: {e}</span>"
        finally:
            self.export_button.disabled = False

    # -- drawing ---------------------------------------------------------------------------------
    def _enable(self) -> None:
        c = self.controls
        prune, quant = c["prune.method"].value, c["quant.method"].value
        c["prune.ratio"].disabled = prune == "none"
        c["prune.pattern"].disabled = prune in ("none", "heads", "channels")
        for k in ("bits", "group_size", "symmetric", "activations"):
            c[f"quant.{k}"].disabled = quant == "none"
        for k in ("window", "sinks"):
            c[f"cache.{k}"].disabled = c["cache.policy"].value != "sliding"
        for k in ("window_ms", "max_batch", "arrival_rate"):
            c[f"batching.{k}"].disabled = not c["batching.on"].value

    @property
    def points(self) -> list:
        """Every point on the figure (hand-picked, then sweep)."""
        return self.hand + self.sweep

    def _redraw(self) -> None:
        from .plots import knob_view_figure, tradeoff_figure

        _replace(self.figure, tradeoff_figure(self.hand, self.baseline, sweep=self.sweep, current=self.current))
        section, key = self.moved
        related = _related(self.points, self.current.recipe if self.current else {}, section, key)
        _replace(self.knob_view, knob_view_figure(related, section, key, self.baseline))
        from .measure.pareto import pareto_front

        labels = [(f"{p.label} ({p.step:.3f}, {p.decode_ms.median:.2f} ms)", i) for i, p in enumerate(self.points)]
        front = {id(p) for p in pareto_front(self.points)}
        self.selection.options = labels
        self.selection.value = tuple(i for _, i in labels if id(self.points[i]) in front)
        self._draw_table()

    def _draw_table(self) -> None:
        from .plots import points_frame

        chosen = [self.points[i] for i in self.selection.value if i < len(self.points)]
        self.table.value = points_frame(chosen).to_html(index=False, border=0) if chosen else ""


def _replace(fig, new) -> None:
    """Swap a FigureWidget's traces and layout for those of `new`, in place."""
    with fig.batch_update():
        fig.data = ()
        fig.add_traces(list(new.data))
        fig.layout = new.layout


def dashboard(meter=None, *, store=None, source=None, episodes=None, limit: int | None = None, threaded: bool = True,
              export_dir=None) -> Dashboard:
    """The trade-off explorer of notebook 05 (see `Dashboard`).

    Args:
        meter: a PointMeter (default: `PointMeter.load(source, episodes, limit=limit)`).
        store: a workbench.store.ResultsStore (None: nothing is kept between kernels).
        source, episodes, limit: the model folder, episode file and steps per point (default: the
            meter's, or 12 when the meter is loaded here); shown in the Load row, which re-reads them.
        threaded: measure beside the kernel (interactive use); False measures inside the callback.
        export_dir: where "Export this point" writes (default: a new temporary folder).
    Returns:
        The Dashboard widget (display it; `.apply(recipe)` sets the controls and waits for the point).
    """
    from .measure.point import PointMeter

    meter = meter if meter is not None else PointMeter.load(source, episodes, limit=limit or 12)
    box = Dashboard(meter, store, threaded=threaded, export_dir=export_dir, source=source or getattr(meter, "source", None),
                    episodes=episodes, limit=limit or len(meter.steps))
    box.wait()
    return box
