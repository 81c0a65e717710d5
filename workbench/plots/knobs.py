"""Knob figures: accuracy, KL, latency and bytes against one knob; per-layer sensitivity and SQNR."""
from __future__ import annotations

import plotly.graph_objects as go

from .style import _COLORS

_METRICS = (  # (attribute or callable, axis title)
    ("step", "step accuracy"),
    ("kl", "KL to baseline (nats/token)"),
    ("decode_ms", "decode ms/token (median, p90 bar)"),
    ("weight_mib", "weights as stored (MiB)"),
)


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
