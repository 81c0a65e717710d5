"""The trade-off dashboard of notebook 05: every knob, the measured points on a Pareto plot (here or at
a deployment target), a per-knob view, a table and the export button, measured in a worker thread."""
from __future__ import annotations

import dataclasses
import importlib.util
import json

import ipywidgets as W

from ..measure.evaluate import model_name
from ..model.load import EMBEDDED_MODELS
from ..recipe import Recipe, RecipeError
from .controls import STYLE, dashboard_controls, recipe_from_controls, related_points
from .jobs import LatestJobQueue

TARGET_CHOICES = (("tiny", "the loaded model, on this machine"),
                  ("glm-edge-1.5b", "GLM-Edge-1.5B shape, ONNX Runtime here"),
                  ("autoglm-phone-9b", "AutoGLM-Phone-9B text decoder, ONNX Runtime here"))


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
                 limit: int | None = None, target: str | None = None, y: str = "step"):
        import plotly.graph_objects as go

        self.meter, self.store, self.threaded = meter, store, threaded
        self.export_dir = export_dir
        self.controls = dashboard_controls()
        # the embedded models by name (open-autoglm-tiny, open-autoglm-tiny-vl), or any folder / hub id typed in
        self.model_path = W.Combobox(value=str(source or ""), options=list(EMBEDDED_MODELS), ensure_option=False,
                                     placeholder="open-autoglm-tiny (default)", description="model", style=STYLE)
        self.episodes_path = W.Text(value=str(episodes or ""), placeholder="data/episodes/eval.jsonl (default)",
                                    description="episodes", style=STYLE)
        self.limit = W.BoundedIntText(value=limit or len(meter.steps), min=1, max=10000, description="steps",
                                      style=STYLE)
        engines = [("ONNX Runtime (what export writes)", "ort"), ("PyTorch eager", "pytorch")]
        if importlib.util.find_spec("llama_cpp") is not None:  # the GGUF file on llama.cpp, where it is installed
            engines.append(("llama.cpp (what export --format gguf writes)", "llama.cpp"))
        self.engine = W.Dropdown(options=engines, value=getattr(meter, "engine", "ort"), description="engine",
                                 style=STYLE)
        self.load_button = W.Button(description="Load", icon="folder-open")
        self.target = W.Dropdown(options=[(f"{name} ({what})", name) for name, what in TARGET_CHOICES],
                                 value=target or "tiny", description="latency at", style=STYLE,
                                 layout=W.Layout(width="420px"))
        self.y_axis = W.ToggleButtons(options=[("step accuracy", "step"), ("KL to baseline", "kl")], value=y,
                                      description="y axis", style=STYLE)
        self.readout = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="260px"))
        self.cancel_button = W.Button(description="Cancel", icon="stop", disabled=True)
        self.figure = go.FigureWidget()
        self.knob_view = go.FigureWidget()
        self.selection = W.SelectMultiple(options=[], rows=6, description="points", style=STYLE,
                                          layout=W.Layout(width="420px"))
        self.table = W.HTML()
        self.export_button = W.Button(description="Export this point", icon="download", button_style="success")
        self.export_status = W.HTML()
        self.current = self.baseline = None
        self.hand, self.sweep = [], []
        self.moved = ("prune", "ratio")
        self._quiet = False
        self.jobs = LatestJobQueue(self._run, self._show_error, lambda: setattr(self.cancel_button, "disabled", True),
                                   threaded=threaded)
        self._targets: dict = {}  # (target, recipe) -> the point's figures there (or None)

        tabs = W.Tab(children=[W.VBox([self.controls[k] for k in self.controls if k.startswith(s)])
                               for s in ("prune.", "quant.", "cache.", "batching.")])
        for i, name in enumerate(("pruning", "quantization", "KV cache", "batching")):
            tabs.set_title(i, name)
        source_row = W.HBox([self.model_path, self.episodes_path, self.limit, self.engine, self.load_button])
        view_row = W.HBox([self.target, self.y_axis])
        status_row = W.HBox([self.progress, self.cancel_button, self.readout])
        table_row = W.HBox([self.selection, W.VBox([self.export_button, self.export_status])])
        super().__init__([source_row, tabs, view_row, status_row, self.figure, self.knob_view, table_row, self.table])

        for name, w in self.controls.items():
            w.observe(lambda change, name=name: self._on_change(name), names="value")
        self.cancel_button.on_click(lambda _: self.jobs.cancel())
        self.load_button.on_click(lambda _: self._submit(("load", None)))
        self.export_button.on_click(lambda _: self._submit(("export", self.current)))
        self.selection.observe(lambda _: self._draw_table(), names="value")
        self.target.observe(lambda _: self._submit(("targets", None)), names="value")
        self.y_axis.observe(lambda _: self._redraw(), names="value")
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
        self.jobs.submit(job)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every requested point is on the figure."""
        self.jobs.wait(timeout)

    def _run(self, job) -> None:
        getattr(self, f"_do_{job[0]}")(job[1])

    def _show_error(self, e: Exception) -> None:
        self.readout.value = f"<span style='color:#c00'>{type(e).__name__}: {e}</span>"

    # -- jobs (run in the worker) ----------------------------------------------------------------
    def _tick(self, done: int, total: int) -> None:
        from ..measure.point import Cancelled

        self.progress.max, self.progress.value = max(total, 1), done
        if self.jobs.cancelled:
            raise Cancelled

    def _do_start(self, _) -> None:
        from ..measure.point import Point
        from ..store import cached_point, stored_entries

        self.readout.value = "measuring the baseline ..."
        self.baseline, _ = cached_point(self.meter, {}, self.store, on_progress=self._tick)
        entries = stored_entries(self.store, self.meter) if self.store is not None else []
        self.hand = [Point.from_json(e.record) for e in entries if e.origin == "hand" and e.recipe]
        self.sweep = [Point.from_json(e.record) for e in entries if e.origin != "hand"]
        self.current = self.baseline
        self.readout.value = (f"baseline: step accuracy {self.baseline.step:.3f} on {self.baseline.n} steps, "
                              f"{len(self.hand)} hand-picked and {len(self.sweep)} sweep points from the store")
        if self.target.value != "tiny":
            self._do_targets(None)
        else:
            self._redraw()

    def _do_targets(self, _) -> None:
        """Give every point its latency and memory at the chosen target (store-cached), then redraw."""
        name = self.target.value
        if name != "tiny":
            pts = [self.baseline, *self.hand, *self.sweep]
            for i, p in enumerate(pts):
                self.progress.max, self.progress.value = len(pts), i
                self.readout.value = f"latency at {name}: {p.label} ({i + 1} of {len(pts)}) ..."
                self._at_target(p)
            self.progress.value = self.progress.max
            self.readout.value = f"latency at {name}: {len(self._targets)} shapes measured or from the store"
        self._redraw()

    def _at_target(self, point):
        """Measure (or fetch from the store) `point`'s figures at the chosen target; kept per recipe."""
        from ..measure.target import with_target

        name, key = self.target.value, self._target_key(point)
        if key not in self._targets:
            try:
                self._targets[key] = with_target(point, name, self.store).target
            except ValueError as e:  # e.g. 3-bit weights: no ONNX Runtime kernel, so no deployed latency
                self._targets[key] = None
                self.export_status.value = f"no latency at {name} for {point.label}: {e}"
        return dataclasses.replace(point, target=self._targets[key])

    def _do_load(self, _) -> None:
        from ..measure.point import PointMeter

        self.readout.value = "loading ..."
        weight = next(self.meter.model.parameters())  # the new model loads where the current one lives
        self.meter = PointMeter.load(self.model_path.value.strip() or None, self.episodes_path.value.strip() or None,
                                     limit=self.limit.value, latency_repeats=self.meter.latency_repeats,
                                     engine=self.engine.value, dtype=str(weight.dtype).removeprefix("torch."),
                                     device=weight.device)
        self._do_start(None)

    def _do_point(self, recipe: dict) -> None:
        import time

        from ..measure.point import Cancelled
        from ..store import cached_point

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
        if self.target.value != "tiny":
            self.readout.value = f"measuring the latency of {point.label} at {self.target.value} (once per shape) ..."
            self._at_target(point)
        self._redraw()
        how = "from the store" if hit else f"measured ({point.engine})"
        at = self.at_target(point).target if self.target.value != "tiny" else None
        there = f"; at {at['name']}: {at['decode_ms_per_token']:.1f} ms/token ({at['method']})" if at else ""
        self.readout.value = (f"<b>{point.label}</b>: step accuracy {point.step:.3f} (n={point.n}), "
                              f"decode {point.decode_ms.median:.2f} ms/token (p90 {point.decode_ms.p90:.2f}), "
                              f"memory {point.memory_bytes / 2**20:.2f} MiB{there}; {how} in "
                              f"{time.perf_counter() - t0:.2f} s")
        self.progress.value = self.progress.max

    def _do_export(self, point) -> None:
        import re
        import tempfile
        from pathlib import Path

        from ..export import export_onnx

        if point is None:
            self.export_status.value = "measure a point first"
            return
        self.export_button.disabled = True
        try:
            root = Path(self.export_dir or tempfile.mkdtemp(prefix="autoglm-export-"))
            out = root / (re.sub(r"[^A-Za-z0-9.]+", "-", point.label).strip("-") or "baseline")
            self.export_status.value = f"exporting {point.label} to {out} ..."
            if point.engine.startswith("llama.cpp"):  # measured on llama.cpp: the GGUF file is what it measured
                from ..export.gguf import export_gguf

                result = export_gguf(out, point.recipe or None, model=self.meter.model, tokenizer=self.meter.tokenizer,
                                     calib=self.meter.calib, overwrite=True, progress=False)
                runtime, lat = "llama.cpp", result.latency_llamacpp
            else:
                result = export_onnx(out, point.recipe or None, model=self.meter.model, tokenizer=self.meter.tokenizer,
                                     calib=self.meter.calib, overwrite=True, progress=False)
                runtime, lat = "ONNX Runtime", getattr(result, "latency_onnxruntime", None)  # none: a VLM's 3 graphs
            timed = f", {runtime} {lat.decode_ms_per_token.median:.2f} ms/token" if lat is not None else ""
            self.export_status.value = f"exported to <code>{result.path}</code>: parity gate passed{timed}"
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
        text_only = getattr(self.meter, "screens", None) is None  # scope matters for a vision-language model only
        c["prune.scope"].disabled = text_only or prune in ("none", "heads", "channels")
        c["quant.scope"].disabled = text_only or quant == "none"
        for k in ("window", "sinks"):
            c[f"cache.{k}"].disabled = c["cache.policy"].value != "sliding"
        for k in ("window_ms", "max_batch", "arrival_rate"):
            c[f"batching.{k}"].disabled = not c["batching.on"].value

    @property
    def points(self) -> list:
        """Every point on the figure (hand-picked, then sweep)."""
        return self.hand + self.sweep

    def _redraw(self) -> None:
        from ..plots import knob_view_figure, tradeoff_figure

        target = None if self.target.value == "tiny" else self.target.value
        at = (lambda p: p) if target is None else self.at_target
        _replace(self.figure, tradeoff_figure([at(p) for p in self.hand], at(self.baseline) if self.baseline else None,
                                              sweep=[at(p) for p in self.sweep],
                                              current=at(self.current) if self.current else None,
                                              y=self.y_axis.value, target=target, model=model_name(self.meter.model)))
        section, key = self.moved
        related = related_points(self.points, self.current.recipe if self.current else {}, section, key)
        _replace(self.knob_view, knob_view_figure(related, section, key, self.baseline))
        from ..measure.pareto import objectives_for, pareto_front

        labels = [(f"{p.label} ({p.step:.3f}, {p.decode_ms.median:.2f} ms)", i) for i, p in enumerate(self.points)]
        shown = [at(p) for p in self.points]  # the table's front is the plot's: same axis, same target
        shown = [p for p in shown if target is None or p.target is not None]
        front = {json.dumps(p.recipe, sort_keys=True)
                 for p in pareto_front(shown, objectives_for(self.y_axis.value, target is not None))}
        self.selection.options = labels
        self.selection.value = tuple(i for _, i in labels if json.dumps(self.points[i].recipe, sort_keys=True) in front)
        self._draw_table()

    def _target_key(self, point) -> tuple[str, str]:
        return self.target.value, json.dumps(point.recipe, sort_keys=True)

    def at_target(self, point):
        """`point` with the figures measured for it at the chosen target (None where there are none yet)."""
        return dataclasses.replace(point, target=self._targets.get(self._target_key(point)))

    def _draw_table(self) -> None:
        from ..plots import points_frame

        chosen = [self.points[i] for i in self.selection.value if i < len(self.points)]
        self.table.value = points_frame(chosen).to_html(index=False, border=0) if chosen else ""


def _replace(fig, new) -> None:
    """Swap a FigureWidget's traces and layout for those of `new`, in place."""
    with fig.batch_update():
        fig.data = ()
        fig.add_traces(list(new.data))
        fig.layout = new.layout


def dashboard(meter=None, *, store=None, source=None, episodes=None, limit: int | None = None, threaded: bool = True,
              export_dir=None, target: str | None = None, y: str = "step", engine: str = "ort",
              dtype: str = "float32", device: str = "cpu") -> Dashboard:
    """The trade-off explorer of notebook 05 (see `Dashboard`).

    Args:
        meter: a PointMeter (default: `PointMeter.load(source, episodes, limit=limit)`).
        store: a workbench.store.ResultsStore (None: nothing is kept between kernels).
        source, episodes, limit: the model folder, episode file and steps per point (default: the
            meter's, or 12 when the meter is loaded here); shown in the Load row, which re-reads them.
        threaded: measure beside the kernel (interactive use); False measures inside the callback.
        export_dir: where "Export this point" writes (default: a new temporary folder).
        dtype, device: how the meter's model loads when it is loaded here (a model in bfloat16 or on a GPU is
            measured in PyTorch).
    Returns:
        The Dashboard widget (display it; `.apply(recipe)` sets the controls and waits for the point).
    """
    from ..measure.point import PointMeter

    meter = meter if meter is not None else PointMeter.load(source, episodes, limit=limit or 48, engine=engine,
                                                            dtype=dtype, device=device)
    box = Dashboard(meter, store, threaded=threaded, export_dir=export_dir, source=source or getattr(meter, "source", None),
                    episodes=episodes, limit=limit or len(meter.steps), target=target, y=y)
    box.wait()
    return box
