"""Deployable ONNX export: decoder with KV cache, int8 / int4 weights through ONNX Runtime, a parity
gate against PyTorch, ONNX Runtime measurements, and the verify step.

    from workbench.export import export_onnx, verify
    result = export_onnx("out/int4", {"quant": {"method": "rtn", "bits": 4, "group_size": 32}})
    print(result.parity.summary(), result.decode_speedup)
    verify("out/int4").passed
"""
from .build import GRAPHS, ExportGateError, ExportResult, export_onnx, float_model, load_recipe
from .folder import ExportError, genai_config, read_manifest
from .parity import TOLERANCES, ParityReport, PhaseParity, Tolerance, parity_gate
from .plot import latency_figure, latency_rows
from .precision import Precision, precision_of, quantize_onnx, torch_reference
from .runtime import OrtDecoder, make_session, measure_ort_latency, run_task_ort
from .verify import VerifyResult, verify
from .wrapper import DecoderShape, FlatKV, export_plain

__all__ = [
    "DecoderShape", "ExportError", "ExportGateError", "ExportResult", "FlatKV", "GRAPHS", "OrtDecoder",
    "ParityReport", "PhaseParity", "Precision", "TOLERANCES", "Tolerance", "VerifyResult", "export_onnx",
    "export_plain", "float_model", "genai_config", "latency_figure", "latency_rows", "load_recipe",
    "make_session", "measure_ort_latency", "parity_gate", "precision_of", "quantize_onnx",
    "read_manifest", "run_task_ort", "torch_reference", "verify",
]
