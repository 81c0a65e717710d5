"""Vision-language figures: where a Glm4v point's bytes and time go (vision tower, language model, KV).

    vision_split_figure(points)   # points: measured Points of a vision-language model (Point.vision_ms set)
"""
from __future__ import annotations

import plotly.graph_objects as go

from .style import _COLORS


def vision_rows(points) -> list[dict]:
    """One row per point: bytes by part and latency by phase (the figures of `vision_split_figure`)."""
    rows = []
    for p in points:
        if p.vision_ms is None:
            raise ValueError(f"{p.label} is not a vision-language point (no vision_ms): measure it on screenshot steps")
        image_kv = p.image_tokens * p.kv_bytes_per_token
        rows.append({
            "recipe": p.label, "engine": p.engine, "n": p.n,
            "vision tower MiB": p.vision_weight_bytes / 2**20,
            "language model MiB": (p.weight_bytes - p.vision_weight_bytes) / 2**20,
            "KV of image tokens MiB": image_kv / 2**20,
            "KV of text tokens MiB": max(p.kv_bytes - image_kv, 0) / 2**20,
            "vision ms": p.vision_ms.median, "prefill ms": p.prefill_ms.median,
            "decode ms/token": p.decode_ms.median, "image tokens": p.image_tokens, "prompt tokens": p.prompt_tokens,
            "step accuracy": p.step, "KL": p.kl,
        })
    return rows


_BYTES = ("vision tower MiB", "language model MiB", "KV of image tokens MiB", "KV of text tokens MiB")
_TIMES = ("vision ms", "prefill ms", "decode ms/token")


def vision_split_figure(points, *, title: str = "") -> go.Figure:
    """Stacked bytes by part (left) and latency by phase (right, median of repeats) for each recipe.

    Args:
        points: Points of one vision-language model (e.g. baseline, int4 scope language, int4 scope all).
        title: figure title (default: what measured them).
    Returns:
        go.Figure with two panels.
    """
    from plotly.subplots import make_subplots

    rows = vision_rows(points)
    labels = [r["recipe"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("memory as stored, by part (MiB)",
                                                        "latency of the typical step, by phase (ms)"))
    base = [0.0] * len(rows)
    for i, key in enumerate(_BYTES):  # stacked: one position, each part on top of the ones before
        ys = [r[key] for r in rows]
        fig.add_trace(go.Bar(x=labels, y=ys, base=list(base), name=key.removesuffix(" MiB"), offsetgroup="bytes",
                             marker_color=_COLORS[i % len(_COLORS)]), row=1, col=1)
        base = [b + y for b, y in zip(base, ys)]
    for i, key in enumerate(_TIMES):  # side by side
        fig.add_trace(go.Bar(x=labels, y=[r[key] for r in rows], name=key, offsetgroup=key,
                             marker_color=_COLORS[(i + 4) % len(_COLORS)]), row=1, col=2)
    engines = sorted({r["engine"].split(" ")[0] for r in rows})
    fig.update_layout(barmode="group", title=title or f"measured on this machine ({', '.join(engines)})",
                      height=420, legend=dict(orientation="h", y=-0.25))
    return fig
