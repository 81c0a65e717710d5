"""Measurement: accuracy, fidelity, latency and memory of a model on the task, as records."""
from .accuracy import predict, run_task
from .cache import CacheRecord, measure_cache
from .evaluate import DEFAULT_CALIB, DEFAULT_EPISODES, evaluate
from .fidelity import kl_and_ppl, target_ids, target_logprobs
from .latency import measure_latency
from .memory import peak_rss_bytes, weight_bytes
from .provenance import model_fingerprint, provenance
from .sensitivity import LayerSensitivity, layer_groups, layer_sensitivity
from .records import AccuracyRecord, LatencyRecord, MemoryRecord, Prediction, Report, Spread

__all__ = [
    "LayerSensitivity", "layer_groups", "layer_sensitivity",
    "AccuracyRecord", "CacheRecord", "DEFAULT_CALIB", "DEFAULT_EPISODES", "LatencyRecord", "MemoryRecord", "Prediction", "Report",
    "Spread", "evaluate", "kl_and_ppl", "measure_cache", "measure_latency", "model_fingerprint", "peak_rss_bytes",
    "predict", "provenance", "run_task", "target_ids", "target_logprobs", "weight_bytes",
]
