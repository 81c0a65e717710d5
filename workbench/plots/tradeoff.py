"""The dashboard's trade-off: accuracy against latency for every measured point, the Pareto front, tables."""
from __future__ import annotations

import plotly.graph_objects as go

from .style import _COLORS

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

    from ..measure.pareto import step_interval

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
    from ..measure.pareto import step_interval

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
    from ..measure.pareto import objectives_for, pareto_front

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
        return p.target.get("memory_bytes_at_context", p.memory_bytes) if target is not None else p.memory_bytes

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

    from ..measure.pareto import step_interval

    def ci(p):
        low, high = step_interval(p)
        return f"[{low:.2f}, {high:.2f}]"

    return pd.DataFrame([{
        "recipe": p.label, "step acc": round(p.step, 3), "step 90% CI": ci(p), "n": p.n, "KL": round(p.kl, 4),
        "decode ms (median)": round(p.decode_ms.median, 2), "decode ms (p90)": round(p.decode_ms.p90, 2),
        "prefill ms": round(p.prefill_ms.median, 1), "memory MiB": round(p.memory_bytes / 2**20, 2),
        "engine": p.engine} for p in points])


def target_frame(points, baseline=None):
    """A pandas DataFrame of points at their deployment target (`point.target`): decode and prefill
    there, the factor against the baseline's decode there, memory at the target's context, how it
    was measured. Points without target figures are left out.

    Args:
        points: Points carrying `target` (see `workbench.measure.point.with_target`).
        baseline: the baseline's Point at the same target (for the "x baseline" column), or None.
    Returns:
        pandas.DataFrame, one row per point.
    """
    import pandas as pd

    base = baseline.target["decode_ms_per_token"] if baseline is not None and baseline.target else None
    rows = []
    for p in points:
        t = p.target
        if not t:
            continue
        low, high = p.step_interval
        rows.append({"recipe": p.label, "step acc": round(p.step, 3), "step 90% CI": f"[{low:.2f}, {high:.2f}]",
                     f"decode ms/token at {t['name']}": round(t["decode_ms_per_token"], 1),
                     "x baseline": round(t["decode_ms_per_token"] / base, 2) if base else None,
                     f"prefill ms ({t['prefill_tokens']} tokens)": round(t["prefill_ms"], 0),
                     f"GiB at {t['context_tokens']} tokens (computed)": round(t["memory_bytes_at_context"] / 2**30, 2),
                     "measured": t["method"], "engine": t["engine"]})
    return pd.DataFrame(rows)
