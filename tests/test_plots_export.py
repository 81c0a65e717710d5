"""latency_figure: ONNX Runtime next to PyTorch per recipe, medians with p90 error bars, engines in the hover."""
from dataclasses import dataclass

import pytest

from workbench.export.precision import Precision
from workbench.measure.records import LatencyRecord, Spread
from workbench.plots import latency_figure, latency_rows


@dataclass
class Fake:
    precision: Precision
    graph: str
    latency_pytorch: LatencyRecord
    latency_onnxruntime: LatencyRecord


def rec(decode, engine):
    return LatencyRecord(Spread(50.0, 55.0, 5), Spread(decode, decode * 1.2, 5), 700, engine, 2)


def test_figure_pairs_runtimes_per_recipe():
    results = [Fake(Precision(), "plain", rec(3.5, "pytorch-eager float32"), rec(1.5, "onnxruntime plain float32")),
               Fake(Precision("int4", 4, 32, True, 4), "fused", rec(7.0, "pytorch-eager int4"),
                    rec(0.5, "onnxruntime fused int4"))]
    points = latency_rows(results)
    assert [p.label for p in points] == ["float32 (plain)"] * 2 + ["int4 (fused)"] * 2
    fig = latency_figure(points)
    decode = [t for t in fig.data if t.xaxis == "x"]
    assert [t.name for t in decode] == ["PyTorch eager", "ONNX Runtime"]
    onnx = decode[1]
    assert list(onnx.y) == [1.5, 0.5] and list(onnx.error_y.array) == pytest.approx([0.3, 0.1])
    assert onnx.customdata[1][0] == "onnxruntime fused int4"  # what measured it, in the hover
    assert len(fig.data) == 4 and "PyTorch eager vs ONNX Runtime" in fig.layout.title.text
    assert latency_rows(results, labels=["a", "b"])[2].label == "b"
