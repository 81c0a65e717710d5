"""Pure plot functions: records in, plotly figures out (no measurement, no widgets)."""
from __future__ import annotations

import plotly.graph_objects as go

from .task import Action, Step, try_parse

_SCREEN_W, _SCREEN_H = 1000, 1000


def _label(node) -> str:
    return node.text or node.content_desc or node.resource_id.rsplit("/", 1)[-1] or node.cls.rsplit(".", 1)[-1]


def screen_figure(step: Step, output: str | None = None, *, height: int = 620) -> go.Figure:
    """Draw a step's screen: element boxes with labels, the target and the model's action marked.

    Args:
        step: the task step (screen nodes, target action and box).
        output: the model's raw output for this step (None: target only).
        height: figure height in pixels (the phone's 0..999 square is drawn at a 9:16 aspect).
    Returns:
        go.Figure with y growing downward as on the phone.
    """
    fig = go.Figure()
    for node in step.screen:
        x1, y1, x2, y2 = node.bounds
        if (x2 - x1) * (y2 - y1) > 0.5 * _SCREEN_W * _SCREEN_H and not node.text:
            continue  # full-screen layout containers hide everything else
        interactive = node.clickable or node.editable or node.scrollable
        fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, layer="below",
                      line=dict(color="#4a78c2" if interactive else "#c7ccd4", width=1),
                      fillcolor="rgba(74,120,194,0.06)" if interactive else "rgba(0,0,0,0)")
    labelled = [n for n in step.screen if n.text or n.content_desc]
    fig.add_trace(go.Scatter(
        x=[n.center[0] for n in labelled], y=[n.center[1] for n in labelled], mode="text",
        text=[_label(n)[:18] for n in labelled], textfont=dict(size=10, color="#333"),
        hovertext=[f"{n.cls.rsplit('.', 1)[-1]} {_label(n)!r} {list(n.bounds)}" for n in labelled],
        hoverinfo="text", name="elements", showlegend=False))
    target = step.action
    if step.target_box is not None:
        x1, y1, x2, y2 = step.target_box
        fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, line=dict(color="#2ca02c", width=3))
    _mark(fig, target, "target", "#2ca02c", "circle-open")
    pred = try_parse(output) if output is not None else None
    if pred is not None:
        _mark(fig, pred, "model", "#d62728", "x")
    title = f"{step.goal}  |  step {step.step} in {step.app}"
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=height,
                      width=int(height * 9 / 16) + 160, margin=dict(l=10, r=10, t=50, b=10),
                      plot_bgcolor="white", legend=dict(orientation="h", y=-0.02))
    fig.update_xaxes(range=[0, 999], showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(range=[999, 0], showgrid=False, zeroline=False, showticklabels=False)
    return fig


def _mark(fig: go.Figure, action: Action, name: str, color: str, symbol: str) -> None:
    """Add an action's point(s) to a screen figure (tap-like: one point; swipe: an arrow)."""
    if action.element is not None:
        fig.add_trace(go.Scatter(x=[action.element[0]], y=[action.element[1]], mode="markers",
                                 marker=dict(size=16, color=color, symbol=symbol, line=dict(width=3, color=color)),
                                 name=f"{name}: {action.type} {list(action.element)}"))
    elif action.start is not None and action.end is not None:
        fig.add_trace(go.Scatter(x=[action.start[0], action.end[0]], y=[action.start[1], action.end[1]],
                                 mode="lines+markers", line=dict(color=color, width=3),
                                 marker=dict(symbol=["circle", "arrow"], size=12, angleref="previous", color=color),
                                 name=f"{name}: Swipe {action.swipe_direction()}"))
    else:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color=color),
                                 name=f"{name}: {action.to_text()[:60]}"))


_METRICS = (  # (attribute or callable, axis title)
    ("step", "step accuracy"),
    ("kl", "KL to baseline (nats/token)"),
    ("decode_ms", "decode ms/token (median, p90 bar)"),
    ("weight_mib", "weights as stored (MiB)"),
)
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _metric(point, key):
    if key == "decode_ms":
        return point.decode_ms.median
    if key == "weight_mib":
        return point.weight_bytes / 2**20
    return getattr(point, key)


def knob_figure(points, x: tuple[str, str], baseline, *, group=lambda p: p.label.split(" ")[0],
                title: str = "") -> go.Figure:
    """Accuracy, KL, decode latency and weight bytes against one knob, one line per method.

    Args:
        points: measured Points (workbench.measure.point.Point).
        x: (recipe section, key) of the knob on the x axis, e.g. ("prune", "ratio").
        baseline: the unoptimized model's Point, drawn as a dashed line on every panel.
        group: point -> series name (default: the first word of the label, i.e. the method).
        title: figure title.
    Returns:
        go.Figure with 2x2 panels.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in _METRICS],
                        horizontal_spacing=0.1, vertical_spacing=0.16)
    series: dict[str, list] = {}
    for p in points:
        series.setdefault(group(p), []).append(p)
    for i, (name, pts) in enumerate(series.items()):
        pts = sorted(pts, key=lambda p: p.value(*x, 0) or 0)
        xs = [p.value(*x, 0) for p in pts]
        for k, (key, _) in enumerate(_METRICS):
            err = (dict(type="data", symmetric=False, array=[p.decode_ms.p90 - p.decode_ms.median for p in pts],
                        arrayminus=[0] * len(pts)) if key == "decode_ms" else None)
            fig.add_trace(go.Scatter(
                x=xs, y=[_metric(p, key) for p in pts], mode="lines+markers", name=name, legendgroup=name,
                showlegend=k == 0, line=dict(color=_COLORS[i % len(_COLORS)]), error_y=err,
                customdata=[[p.label, p.n, p.engine] for p in pts],
                hovertemplate="%{customdata[0]}<br>%{y:.4g} (n=%{customdata[1]}, %{customdata[2]})<extra></extra>"),
                row=k // 2 + 1, col=k % 2 + 1)
    for k, (key, _) in enumerate(_METRICS):
        fig.add_hline(y=_metric(baseline, key), line=dict(dash="dash", color="#555"), row=k // 2 + 1,
                      col=k % 2 + 1, annotation_text="baseline" if k == 0 else None)
    fig.update_xaxes(title_text=f"{x[0]}.{x[1]}")
    fig.update_layout(title=title or f"measured against {x[0]}.{x[1]} (PyTorch eager, this machine)",
                      height=620, margin=dict(t=70, l=50, r=20, b=50), hovermode="closest")
    return fig


def sensitivity_figure(records, title: str = "") -> go.Figure:
    """KL and step accuracy when one decoder layer at a time is transformed.

    Args:
        records: LayerSensitivity records (layer, names, kl, step).
        title: what was applied, e.g. "magnitude 50%, one layer at a time".
    Returns:
        go.Figure: KL bars and step accuracy markers per layer.
    """
    layers = [f"layer {r.layer}" for r in records]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=layers, y=[r.kl for r in records], name="KL to baseline", marker_color="#1f77b4"))
    fig.add_trace(go.Scatter(x=layers, y=[r.step for r in records], name="step accuracy", yaxis="y2",
                             mode="markers+lines", marker=dict(size=10, color="#d62728")))
    fig.update_layout(title=title or "per-layer sensitivity", height=380, margin=dict(t=60, l=50, r=50, b=40),
                      yaxis=dict(title="KL (nats/token)"),
                      yaxis2=dict(title="step accuracy", overlaying="y", side="right", range=[0, 1.02]),
                      legend=dict(orientation="h", y=1.12))
    return fig


def sqnr_figure(reports: dict) -> go.Figure:
    """Per-layer weight SQNR (dB), one line per setting.

    Args:
        reports: setting label (e.g. bits) -> QuantReport (its .layers carry name and weight_sqnr_db).
    Returns:
        go.Figure.
    """
    fig = go.Figure()
    for i, (label, rep) in enumerate(reports.items()):
        layers = [r for r in rep.layers if r.weight_sqnr_db != float("inf")]
        fig.add_trace(go.Scatter(x=[r.name.replace("model.layers.", "L").replace(".weight", "") for r in layers],
                                 y=[r.weight_sqnr_db for r in layers], mode="lines+markers",
                                 name=f"{label}", line=dict(color=_COLORS[i % len(_COLORS)])))
    fig.update_layout(title="weight SQNR per layer (dB)", height=380, yaxis_title="dB",
                      margin=dict(t=50, l=50, r=20, b=110), xaxis_tickangle=-45)
    return fig


def serving_figure(reports, live=(), *, title: str = "", mark_window: float | None = None) -> go.Figure:
    """Batching: p50/p99 latency and throughput against the batching window, one colour per arrival rate.

    Args:
        reports: simulated ServingReports (workbench.serve), e.g. from `sweep`; lines.
        live: live-measured ServingReports drawn as markers over the lines (same colour per rate).
        title: figure title.
        mark_window: draw a vertical line at this window (ms), e.g. the explorer's current setting.
    Returns:
        go.Figure with two panels: latency (log scale; p50 solid, p99 dashed) and throughput.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["latency per request (ms): p50 solid, p99 dashed",
                                        "throughput (requests/s)"])
    rates = sorted({r.arrival_rate for r in reports} | {r.arrival_rate for r in live})
    color = {rate: _COLORS[i % len(_COLORS)] for i, rate in enumerate(rates)}
    for rate in rates:
        pts = sorted((r for r in reports if r.arrival_rate == rate), key=lambda r: r.window_ms)
        if not pts:
            continue
        xs, name = [r.window_ms for r in pts], f"{rate:g} req/s"
        info = [[r.max_batch, r.mean_batch, r.queue_wait_share, r.n] for r in pts]
        hover = ("window %{x} ms: %{y:.4g}<br>max batch %{customdata[0]}, mean batch %{customdata[1]:.2f}, "
                 "queue wait %{customdata[2]:.0%} (n=%{customdata[3]}, simulated)<extra>" + name + "</extra>")
        for key, dash, show in (("p50_ms", "solid", True), ("p99_ms", "dash", False)):
            fig.add_trace(go.Scatter(x=xs, y=[getattr(r, key) for r in pts], mode="lines", name=name,
                                     legendgroup=name, showlegend=show, customdata=info, hovertemplate=hover,
                                     line=dict(color=color[rate], dash=dash)), row=1, col=1)
        fig.add_trace(go.Scatter(x=xs, y=[r.throughput_rps for r in pts], mode="lines", name=name,
                                 legendgroup=name, showlegend=False, customdata=info, hovertemplate=hover,
                                 line=dict(color=color[rate])), row=1, col=2)
    for k, r in enumerate(live):
        name = "live (measured)"
        common = dict(legendgroup="live", mode="markers", name=name,
                      hovertemplate=f"{r.label}<br>%{{y:.4g}} (n={r.n}, mean batch {r.mean_batch:.2f})<extra></extra>")
        fig.add_trace(go.Scatter(x=[r.window_ms, r.window_ms], y=[r.p50_ms, r.p99_ms], showlegend=k == 0,
                                 marker=dict(size=11, color=color[r.arrival_rate], symbol=["circle", "diamond"],
                                             line=dict(width=1.5, color="black")), **common), row=1, col=1)
        fig.add_trace(go.Scatter(x=[r.window_ms], y=[r.throughput_rps], showlegend=False,
                                 marker=dict(size=11, color=color[r.arrival_rate], symbol="circle",
                                             line=dict(width=1.5, color="black")), **common), row=1, col=2)
    if mark_window is not None:
        for col in (1, 2):
            fig.add_vline(x=mark_window, line=dict(color="#888", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="batching window (ms)")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(title=title or "dynamic batching: simulated over measured service times (lines), "
                      "live (markers); PyTorch eager, this machine",
                      height=430, margin=dict(t=80, l=50, r=20, b=50), hovermode="closest",
                      legend=dict(title="arrival rate"))
    return fig


def service_figure(service) -> go.Figure:
    """Measured batch service times against batch size, next to the fitted cost model.

    Args:
        service: a ServiceModel (workbench.serve) with its measured BatchSamples.
    Returns:
        go.Figure with two panels: batch time per request (ms; measured median with p90 bar, fit, and
        its prefill and decode parts) and decode-step time against the rows still decoding (ms;
        measured median, fit).
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["batch time per request (ms)", "one decode step (ms)"])
    by = service.per_request_ms()
    sizes = list(by)
    fig.add_trace(go.Scatter(
        x=sizes, y=[by[b][0] for b in sizes], mode="markers", name="measured (median, p90 bar)",
        marker=dict(size=10, color=_COLORS[0]),
        error_y=dict(type="data", symmetric=False, array=[by[b][1] - by[b][0] for b in sizes],
                     arrayminus=[0] * len(sizes))), row=1, col=1)
    fit = {}
    for s in service.samples:
        fit.setdefault(s.batch_size, []).append(max(service.batch_finish_s(s.prompt_tokens, s.new_tokens))
                                                 / s.batch_size * 1e3)
    fig.add_trace(go.Scatter(x=sizes, y=[sorted(fit[b])[len(fit[b]) // 2] for b in sizes], mode="lines",
                             name="fitted model (same batches)", line=dict(color=_COLORS[1])), row=1, col=1)
    steps: dict[int, list[float]] = {}
    for s in service.samples:
        for b, dt in zip(s.active, s.decode_s):
            steps.setdefault(b, []).append(dt * 1e3)
    active = sorted(steps)
    fig.add_trace(go.Scatter(x=active, y=[sorted(steps[b])[len(steps[b]) // 2] for b in active], mode="markers",
                             name="measured decode step (median)", marker=dict(size=9, color=_COLORS[2])),
                  row=1, col=2)
    ctx = sorted(p for p, _ in service.profile)[len(service.profile) // 2] + 8  # a typical cache length
    fig.add_trace(go.Scatter(x=active, y=[service.decode_step_s(b, ctx) * 1e3 for b in active], mode="lines",
                             name="fitted decode step", line=dict(color=_COLORS[3])), row=1, col=2)
    split = service.per_request_split_ms()  # where a request's time goes: prefill (one by one) and decode
    for k, (phase, dash) in enumerate((("prefill", "dot"), ("decode", "dash"))):
        fig.add_trace(go.Scatter(x=sizes, y=[split[b][k] for b in sizes], mode="lines+markers",
                                 name=f"{phase} per request (measured median)",
                                 line=dict(color=_COLORS[4 + k], dash=dash)), row=1, col=1)
    fig.update_xaxes(title_text="batch size", row=1, col=1)
    fig.update_xaxes(title_text="rows still decoding", row=1, col=2)
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(title=f"service times, measured ({service.engine}, {service.threads} thread(s)) "
                      f"and fitted (median error {service.fit_error():.0%})",
                      height=380, margin=dict(t=80, l=50, r=20, b=50))
    return fig


def latency_cdf_figure(reports, title: str = "") -> go.Figure:
    """Per-request latency distributions (empirical CDF), e.g. a live run next to its replay.

    Args:
        reports: ServingReports with per-request records.
        title: figure title.
    Returns:
        go.Figure, latency (ms) against the share of requests answered within it.
    """
    fig = go.Figure()
    for i, r in enumerate(reports):
        lat = sorted(q.latency_s * 1e3 for q in r.requests)
        fig.add_trace(go.Scatter(x=lat, y=[(k + 1) / len(lat) for k in range(len(lat))], mode="lines",
                                 line=dict(shape="hv", color=_COLORS[i % len(_COLORS)],
                                           dash="solid" if r.mode == "live" else "dash"),
                                 name=r.label))
    fig.update_layout(title=title or "latency per request: live (solid) and replay (dashed)", height=380,
                      xaxis_title="latency (ms)", yaxis_title="share of requests", yaxis_range=[0, 1.02],
                      margin=dict(t=60, l=50, r=20, b=50), legend=dict(orientation="h", y=-0.25))
    return fig


def cache_figure(records, baseline: str = "full", title: str = "") -> go.Figure:
    """KV-cache settings side by side: step accuracy, mean step time and prefill time against KV bytes held.

    Args:
        records: CacheRecords (workbench.measure.cache), one per setting, measured in one run.
        baseline: label of the record drawn as the dashed reference on each panel.
        title: figure title.
    Returns:
        go.Figure with 3 panels sharing the x axis (KV MiB held by one request, peak).
    """
    from plotly.subplots import make_subplots

    panels = (("step", "step accuracy"), ("step_ms_mean", "mean ms per agent step"),
              ("prefill_ms_mean", "mean prefill ms per step"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in panels], horizontal_spacing=0.08)
    for i, r in enumerate(records):
        for k, (key, _) in enumerate(panels):
            fig.add_trace(go.Scatter(
                x=[r.kv_bytes / 2**20], y=[getattr(r, key)], mode="markers", name=r.label, legendgroup=r.label,
                showlegend=k == 0, marker=dict(size=12, color=_COLORS[i % len(_COLORS)]),
                customdata=[[r.label, r.n, r.prefix_hit_rate, r.decode_ms_per_token.median, r.engine]],
                hovertemplate=("%{customdata[0]}<br>%{y:.4g} at %{x:.2f} MiB KV<br>n=%{customdata[1]}, "
                               "prefix hit rate %{customdata[2]:.2f}, decode %{customdata[3]:.2f} ms/token"
                               "<br>%{customdata[4]}<extra></extra>")), row=1, col=k + 1)
    ref = next((r for r in records if r.label == baseline), None)
    if ref is not None:
        for k, (key, _) in enumerate(panels):
            fig.add_hline(y=getattr(ref, key), line=dict(dash="dash", color="#555"), row=1, col=k + 1)
    fig.update_xaxes(title_text="KV MiB held (peak, one request)")
    fig.update_layout(title=title or "KV-cache settings, measured on the eval episodes (PyTorch eager)",
                      height=420, margin=dict(t=70, l=50, r=20, b=50), legend=dict(orientation="h", y=-0.25))
    return fig


def prefix_stream_figure(records, title: str = "") -> go.Figure:
    """Prefix cache over the request stream: share of each step's prompt reused, and the running hit rate.

    Args:
        records: CacheRecords with a prefix cache (their `reused_history` and `hit_rate_history`).
        title: figure title.
    Returns:
        go.Figure: reused share per request (markers) and cumulative hit rate (line), per record.
    """
    fig = go.Figure()
    for i, r in enumerate(records):
        color = _COLORS[i % len(_COLORS)]
        xs = list(range(1, len(r.reused_history) + 1))
        fig.add_trace(go.Scatter(x=xs, y=list(r.reused_history), mode="markers", marker=dict(size=5, color=color),
                                 name=f"{r.label}: prompt share reused", legendgroup=r.label))
        fig.add_trace(go.Scatter(x=xs, y=list(r.hit_rate_history), mode="lines", line=dict(color=color),
                                 name=f"{r.label}: hit rate so far", legendgroup=r.label))
    fig.update_layout(title=title or "prefix cache over the agent-step stream", height=380,
                      xaxis_title="request (agent step, episode order)", yaxis_title="share", yaxis_range=[0, 1.02],
                      margin=dict(t=60, l=50, r=20, b=50), legend=dict(orientation="h", y=-0.3))
    return fig


# --- the dashboard: the trade-off of every measured point ------------------------------------------
_KNOB_COLORS = {"baseline": "#555555", "prune": "#1f77b4", "quant": "#ff7f0e", "prune+quant": "#2ca02c",
                "cache": "#9467bd", "batching": "#8c564b"}


def knob_group(point) -> str:
    """The colour group of a point: which knobs its recipe sets ("prune+quant", "cache", ...)."""
    return "+".join(s for s in ("prune", "quant", "cache", "batching") if s in point.recipe) or "baseline"


def _group_color(group: str) -> str:
    if group in _KNOB_COLORS:
        return _KNOB_COLORS[group]
    return _COLORS[sum(map(ord, group)) % len(_COLORS)]


def _target_of(point, target: str | None):
    """The point's latency figure at `target` (a dict), or None when it has none for that target."""
    fig = getattr(point, "target", None)
    if target is None or not isinstance(fig, dict) or fig.get("name", target) != target:
        return None
    return fig


def _x_of(point, target: str | None = None) -> float:
    """A point's decode ms/token on the trade-off's x axis: at `target` when given, else as measured here.

    Args:
        point: a measured point.
        target: the target model's name, or None for the latency measured on this machine.
    Returns:
        Milliseconds per decoded token (median).
    """
    if target is None:
        return point.decode_ms.median
    return point.target["decode_ms_per_token"]


def _x_p90(point, target: str | None = None) -> float:
    if target is None:
        return point.decode_ms.p90
    return point.target.get("decode_ms_per_token_p90", point.target["decode_ms_per_token"])


def _y_of(point, y: str) -> float:
    return point.step if y == "step" else point.kl


def _hover(p, target: str | None = None) -> str:
    import json

    from .measure.pareto import step_interval

    low, high = step_interval(p)
    lines = [f"<b>{p.label}</b>", f"step {p.step:.3f} [{low:.2f}, {high:.2f}] 90% CI, n={p.n}", f"KL {p.kl:.4f}",
             f"decode {p.decode_ms.median:.2f} ms/token (p90 {p.decode_ms.p90:.2f}, {p.decode_ms.n} repeats)",
             f"prefill {p.prefill_ms.median:.1f} ms (p90 {p.prefill_ms.p90:.1f})",
             f"memory {p.memory_bytes / 2**20:.2f} MiB (weights {p.weight_bytes / 2**20:.2f}, "
             f"KV {p.kv_bytes / 2**20:.2f})"]
    at = getattr(p, "target", None)
    if isinstance(at, dict):
        lines.append(f"at {at.get('name', '?')}: decode {at['decode_ms_per_token']:.2f} ms/token"
                     + (f" (p90 {at['decode_ms_per_token_p90']:.2f})" if "decode_ms_per_token_p90" in at else "")
                     + f", {at.get('method', '?')} ({at.get('engine', '?')})")
    if p.serving:
        lines.append(f"serving p50 {p.serving['p50_ms']:.0f} ms, p99 {p.serving['p99_ms']:.0f} ms, "
                     f"{p.serving['throughput_rps']:.2f} req/s (simulated)")
    lines += [f"measured by {p.engine}", json.dumps(p.recipe)]
    return "<br>".join(lines)


def _error_bars(pts, y: str, target: str | None) -> dict:
    """error_x (to the p90) and, for step accuracy, error_y (the Wilson interval) of a marker trace."""
    from .measure.pareto import step_interval

    bars = dict(error_x=dict(type="data", symmetric=False, thickness=1, arrayminus=[0] * len(pts),
                             array=[_x_p90(p, target) - _x_of(p, target) for p in pts]))
    if y == "step":
        spans = [step_interval(p) for p in pts]
        bars["error_y"] = dict(type="data", symmetric=False, thickness=1,
                               array=[high - p.step for p, (_, high) in zip(pts, spans)],
                               arrayminus=[p.step - low for p, (low, _) in zip(pts, spans)])
    return bars


def _distinct(values, sep: str = ", ") -> str:
    return sep.join(sorted({str(v) for v in values})) or "-"


def _x_title(every, target: str | None, model: str | None) -> str:
    """The latency axis title: which engine measured it, and on what (this machine or the target)."""
    if target is None:
        engines = _distinct(p.engine.split(" ")[0].rstrip(",") for p in every)
        return f"decode ms/token on this machine{f', {model}' if model else ''} ({engines})"
    engines = _distinct(p.target.get("engine", "?") for p in every)
    methods = _distinct((p.target.get("method", "?") for p in every), "; ")
    return f"decode ms/token at {target} ({engines}, {methods})"


_Y_TITLES = {"step": "step accuracy (90% Wilson interval)",
             "kl": "KL to the baseline (nats/token, lower is better)"}


def tradeoff_figure(points, baseline=None, *, sweep=(), current=None, title: str = "", y: str = "step",
                    target: str | None = None, model: str | None = None) -> go.Figure:
    """Step accuracy (or KL) against decode latency for every measured point, the Pareto front drawn.

    Marker area follows memory (weights + KV), colour the knobs a recipe sets; hand-picked points
    are circles, sweep points diamonds; the baseline is a star; the latest point is ringed.
    Step accuracy carries its 90% Wilson interval as error bars, latency a bar to its p90.
    The front is over (accuracy up, latency down, memory down) with accuracy compared by interval:
    overlapping intervals are a tie.

    Args:
        points: hand-picked Points.
        baseline: the unoptimized model's Point (or None).
        sweep: Points from sweeps.
        current: the Point just measured or fetched (ringed), or None.
        title: figure title.
        y: "step" (step accuracy with its interval) or "kl" (KL to the baseline, lower is better).
        target: a target model's name: x is each point's decode figure at that target (its `target`
            dict); points without one are left out and the title says how many. None: x is the
            latency measured on this machine.
        model: the measured model's name, for the x axis title when `target` is None.
    Returns:
        go.Figure.
    """
    from .measure.pareto import objectives_for, pareto_front

    if y not in _Y_TITLES:
        raise ValueError(f"y must be one of {sorted(_Y_TITLES)}, got {y!r}")
    every = [*points, *sweep] + ([baseline] if baseline is not None else [])
    kept = [p for p in every if target is None or _target_of(p, target) is not None]
    left_out = len(every) - len(kept)
    if target is not None:
        keep = {id(p) for p in kept}
        points, sweep = [p for p in points if id(p) in keep], [p for p in sweep if id(p) in keep]
        baseline = baseline if baseline is not None and id(baseline) in keep else None
        current = current if current is not None and _target_of(current, target) is not None else None
    def mem(p):  # marker area: memory here, or at the target's context
        return p.target["memory_bytes_at_context"] if target is not None else p.memory_bytes

    mem_max = max((mem(p) for p in kept), default=1) or 1
    fig = go.Figure()
    groups: dict[tuple[str, str], list] = {}
    for origin, pts in (("hand", points), ("sweep", sweep)):
        for p in pts:
            groups.setdefault((knob_group(p), origin), []).append(p)
    for (group, origin), pts in groups.items():
        fig.add_trace(go.Scatter(
            x=[_x_of(p, target) for p in pts], y=[_y_of(p, y) for p in pts], mode="markers",
            name=f"{group} ({origin})", legendgroup=group,
            marker=dict(size=[10 + 26 * (mem(p) / mem_max) ** 0.5 for p in pts],
                        color=_group_color(group),
                        symbol="circle" if origin == "hand" else "diamond", opacity=0.75,
                        line=dict(width=1, color="white")),
            hovertext=[_hover(p, target) for p in pts], hoverinfo="text", **_error_bars(pts, y, target)))
    front = sorted(pareto_front(kept, objectives_for(y, target is not None)), key=lambda p: _x_of(p, target))
    if front:
        fig.add_trace(go.Scatter(x=[_x_of(p, target) for p in front], y=[_y_of(p, y) for p in front],
                                 mode="lines", line=dict(color="#444", dash="dot", width=1.5, shape="hv"),
                                 name=f"Pareto front ({len(front)})", hoverinfo="skip"))
    if baseline is not None:
        fig.add_trace(go.Scatter(x=[_x_of(baseline, target)], y=[_y_of(baseline, y)], mode="markers",
                                 marker=dict(symbol="star", size=18, color="#555", line=dict(width=1, color="white")),
                                 name="baseline", hovertext=[_hover(baseline, target)], hoverinfo="text",
                                 **_error_bars([baseline], y, target)))
    if current is not None:
        fig.add_trace(go.Scatter(x=[_x_of(current, target)], y=[_y_of(current, y)], mode="markers",
                                 marker=dict(symbol="circle-open", size=34, color="#d62728", line=dict(width=2)),
                                 name="current", hovertext=[_hover(current, target)], hoverinfo="text"))
    where = f"at {target}" if target else "this machine"
    heading = title or f"measured trade-off ({where}); marker area = memory"
    if left_out:
        heading += f" ({left_out} point{'s' * (left_out != 1)} without a figure at {target} left out)"
    fig.update_layout(
        title=heading, xaxis_title=_x_title(kept, target, model), yaxis_title=_Y_TITLES[y],
        height=480, margin=dict(t=60, l=60, r=20, b=50), hovermode="closest", plot_bgcolor="white",
        legend=dict(itemsizing="constant"))
    if y == "step":
        fig.update_yaxes(range=[-0.02, 1.02], gridcolor="#eee")
    else:
        fig.update_yaxes(rangemode="tozero", gridcolor="#eee")
    fig.update_xaxes(gridcolor="#eee", rangemode="tozero")
    return fig


def points_frame(points):
    """The dashboard's table: one row per point.

    Args:
        points: measured Points.
    Returns:
        pandas DataFrame with the recipe, step accuracy and its 90% interval, KL, latency, memory, engine.
    """
    import pandas as pd

    from .measure.pareto import step_interval

    def ci(p):
        low, high = step_interval(p)
        return f"[{low:.2f}, {high:.2f}]"

    return pd.DataFrame([{
        "recipe": p.label, "step acc": round(p.step, 3), "step 90% CI": ci(p), "n": p.n, "KL": round(p.kl, 4),
        "decode ms (median)": round(p.decode_ms.median, 2), "decode ms (p90)": round(p.decode_ms.p90, 2),
        "prefill ms": round(p.prefill_ms.median, 1), "memory MiB": round(p.memory_bytes / 2**20, 2),
        "engine": p.engine} for p in points])


def knob_view_figure(points, section: str, key: str, baseline=None, *, title: str = "") -> go.Figure:
    """Accuracy, decode latency and memory (and simulated p99 where measured) against one knob.

    Args:
        points: Points that differ only in `section.key` (the knob just moved); categorical values are fine.
        section, key: the knob on the x axis, e.g. ("prune", "ratio") or ("cache", "policy").
        baseline: the unoptimized model's Point, drawn as a dashed line (or None).
        title: figure title.
    """
    from plotly.subplots import make_subplots

    panels = [("step accuracy", lambda p: p.step), ("decode ms/token (median)", lambda p: p.decode_ms.median),
              ("memory MiB (weights + KV)", lambda p: p.memory_bytes / 2**20)]
    if any(p.serving for p in points):
        panels.append(("serving p99 ms (simulated)", lambda p: p.serving["p99_ms"] if p.serving else None))
    pts = sorted(points, key=lambda p: (str(type(p.value(section, key))), p.value(section, key) or 0))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _ in panels], horizontal_spacing=0.08)
    xs = [p.value(section, key, "-") for p in pts]
    for i, (_, get) in enumerate(panels):
        fig.add_trace(go.Scatter(x=xs, y=[get(p) for p in pts], mode="lines+markers", showlegend=False,
                                 line=dict(color=_COLORS[i]), hovertext=[p.label for p in pts], hoverinfo="text+y"),
                      row=1, col=i + 1)
        if baseline is not None and get(baseline) is not None:
            fig.add_hline(y=get(baseline), line=dict(dash="dash", color="#555"), row=1, col=i + 1)
    fig.update_xaxes(title_text=f"{section}.{key}")
    fig.update_layout(title=title or f"against {section}.{key}, other knobs as set (dashed: baseline)",
                      height=300, margin=dict(t=60, l=50, r=20, b=50))
    return fig
