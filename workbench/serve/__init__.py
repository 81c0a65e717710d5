"""The batching knob: a dynamic batcher (Triton's rule) serving agent steps through the real model,
live with threads or replayed by simulation over measured service times."""
from .arrivals import poisson_arrivals, step_prompts
from .batch import MAX_NEW_TOKENS, BatchKVLayer, BatchResult, generate_batch, merge_caches
from .conclusion import BatchingConclusion, batching_summary, conclude_batching
from .config import BatchingConfig
from .live import serve_live
from .replay import capacity, service_drift, simulate, sweep
from .report import RequestRecord, ServingReport, build_report
from .service import BatchSample, ServiceModel, fit_service, measure_service_times

__all__ = [
    "BatchKVLayer", "BatchResult", "BatchSample", "BatchingConclusion", "BatchingConfig", "MAX_NEW_TOKENS",
    "RequestRecord", "ServiceModel", "ServingReport", "batching_summary", "build_report", "capacity",
    "conclude_batching", "fit_service", "generate_batch", "measure_service_times", "merge_caches",
    "poisson_arrivals", "serve_live", "service_drift", "simulate", "step_prompts", "sweep",
]
