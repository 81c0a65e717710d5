"""Export latency: ONNX Runtime next to PyTorch eager for the same recipes, as a pure plot (records -> go.Figure)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:  # annotations only: importing the plots stays light (no torch)
    from ..measure.records import LatencyRecord, Spread

_COLORS = {"PyTorch eager": "#7f7f7f", "ONNX Runtime": "#1f77b4"}


@dataclass(frozen=True)
class LatencyPoint:
    """One bar: a recipe label, which runtime, the engine string that measured it, and the spreads (ms)."""

    label: str
    runtime: str
    engine: str
    decode_ms: Spread
    prefill_ms: Spread
    prompt_tokens: int


def latency_rows(results, labels=None) -> list[LatencyPoint]:
    """LatencyPoints from export results (both runtimes of each).

    Args:
        results: ExportResult objects (anything with latency_pytorch / latency_onnxruntime LatencyRecords).
        labels: one label per result (default: graph and precision).
    Returns:
        list of LatencyPoint, PyTorch then ONNX Runtime for each result.
    """
    rows = []
    for i, r in enumerate(results):
        label = labels[i] if labels else f"{r.precision.kind} ({r.graph})"
        for runtime, rec in (("PyTorch eager", r.latency_pytorch), ("ONNX Runtime", r.latency_onnxruntime)):
            rec: LatencyRecord
            rows.append(LatencyPoint(label, runtime, rec.engine, rec.decode_ms_per_token, rec.prefill_ms,
                                     rec.prompt_tokens))
    return rows


def latency_figure(points: list[LatencyPoint], *, title: str = "Measured latency: PyTorch eager vs ONNX Runtime "
                   "(same recipe, same run)") -> go.Figure:
    """Grouped bars of decode ms/token and prefill ms per recipe and runtime (median; error bar up to p90).

    Args:
        points: LatencyPoints (see `latency_rows`).
        title: figure title.
    Returns:
        go.Figure with two panels (decode, prefill).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("decode, ms per token (batch 1)", "prefill, ms per prompt"))
    for runtime in dict.fromkeys(p.runtime for p in points):
        mine = [p for p in points if p.runtime == runtime]
        for col, attr in ((1, "decode_ms"), (2, "prefill_ms")):
            med = [getattr(p, attr).median for p in mine]
            p90 = [getattr(p, attr).p90 for p in mine]
            fig.add_trace(go.Bar(
                x=[p.label for p in mine], y=med, name=runtime, legendgroup=runtime, showlegend=col == 1,
                marker_color=_COLORS.get(runtime),
                error_y=dict(type="data", symmetric=False, array=[b - a for a, b in zip(med, p90)],
                             arrayminus=[0] * len(med)),
                customdata=[[p.engine, getattr(p, attr).n, p.prompt_tokens] for p in mine],
                hovertemplate="%{x}<br>%{y:.2f} ms (median; bar to p90)<br>%{customdata[0]}, "
                              "%{customdata[1]} repeats, prompt %{customdata[2]} tokens<extra></extra>"),
                row=1, col=col)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), barmode="group", height=420,
                      legend=dict(orientation="h", y=-0.15), margin=dict(l=50, r=20, t=70, b=60))
    fig.update_yaxes(title_text="ms", rangemode="tozero")
    return fig
