"""Pure plot functions of the face: records in, plotly figures and tables out (no measurement, no widgets).

One module per area: `screens` (a step's phone screen), `knobs` (metrics against one knob, per-layer
sensitivity and SQNR), `serving` (batching, service times, latency CDFs, KV and prefix caches), `tradeoff`
(the dashboard's trade-off, the Pareto front and its tables), `export` (ONNX Runtime against PyTorch latency),
`vision` (a vision-language model's bytes and time by part).

    from workbench.plots import tradeoff_figure
    tradeoff_figure(points, baseline, target="autoglm-phone-9b")
"""
from .export import latency_figure, latency_rows
from .knobs import knob_figure, knob_view_figure, sensitivity_figure, sqnr_figure
from .screens import screen_figure
from .serving import cache_figure, latency_cdf_figure, prefix_stream_figure, service_figure, serving_figure
from .tradeoff import knob_group, points_frame, target_frame, tradeoff_figure
from .vision import vision_rows, vision_split_figure

__all__ = [
    "cache_figure", "knob_figure", "knob_group", "knob_view_figure", "latency_cdf_figure", "latency_figure",
    "latency_rows", "points_frame", "prefix_stream_figure", "screen_figure", "sensitivity_figure", "service_figure",
    "serving_figure", "sqnr_figure", "target_frame", "tradeoff_figure", "vision_rows", "vision_split_figure",
]
