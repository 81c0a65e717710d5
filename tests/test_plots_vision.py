"""Tests for workbench.plots.vision: a vision-language point's bytes and time by part."""
from __future__ import annotations

import pytest

from workbench.measure.point import Point
from workbench.measure.records import Spread
from workbench.plots import vision_rows, vision_split_figure


def _point(recipe, weight, vision, vision_ms=3.0, image_tokens=40, kv=200_000, per_token=250.0):
    s = lambda v: Spread(v, v * 1.1, 3)  # noqa: E731
    return Point(recipe, 6, 0.0, 0.0, 1.0, 0.01, 2.0, s(8.0), s(1.2), weight, "onnxruntime-vision-language", 1.0,
                 kv_bytes=kv, kv_bytes_per_token=per_token, prompt_tokens=660, vision_ms=s(vision_ms),
                 vision_weight_bytes=vision, image_tokens=image_tokens, prompt_mode="open-autoglm")


def test_rows_split_bytes_and_kv_by_part():
    rows = vision_rows([_point({}, 5 << 20, 1 << 20)])
    r = rows[0]
    assert r["vision tower MiB"] == 1.0 and r["language model MiB"] == 4.0
    assert r["KV of image tokens MiB"] == pytest.approx(40 * 250 / 2**20)
    assert r["KV of image tokens MiB"] + r["KV of text tokens MiB"] == pytest.approx(200_000 / 2**20)
    assert r["vision ms"] == 3.0 and r["image tokens"] == 40


def test_figure_stacks_bytes_and_sets_phases_side_by_side():
    pts = [_point({}, 5 << 20, 1 << 20), _point({"quant": {"method": "rtn", "bits": 4, "scope": "all"}}, 2 << 20, 1 << 19)]
    fig = vision_split_figure(pts)
    bytes_traces = [t for t in fig.data if t.offsetgroup == "bytes"]
    assert len(bytes_traces) == 4 and len(fig.data) == 7
    top = [b + y for b, y in zip(bytes_traces[-1].base, bytes_traces[-1].y)]
    assert top[0] == pytest.approx(5 + 200_000 / 2**20)  # weights + KV, stacked
    assert "+vision" in fig.data[0].x[1]


def test_a_text_point_is_refused():
    text = Point({}, 4, 0.5, 0.5, 0.0, None, None, Spread(1, 1, 1), Spread(1, 1, 1), 10, "pytorch-eager", 0.1)
    with pytest.raises(ValueError, match="not a vision-language point"):
        vision_rows([text])
