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
