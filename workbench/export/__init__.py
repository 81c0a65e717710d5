"""Deployable ONNX export: decoder with KV cache, the recipe's own int8 / int4 codes packed into
MatMulNBits, a parity gate against the same model in PyTorch, ONNX Runtime measurements, and verify.

    from workbench.export import export_onnx, verify
    result = export_onnx("out/int4", {"quant": {"method": "rtn", "bits": 4, "group_size": 32}})
    print(result.parity.summary(), result.decode_speedup)
    verify("out/int4").passed
"""
from .build import GRAPHS, ExportGateError, ExportResult, export_model, export_onnx, load_recipe
from .folder import ExportError, genai_config, read_manifest
from .parity import TOLERANCES, ParityReport, PhaseParity, Tolerance, parity_gate
from .precision import Precision, dequantized, pack_plain, precision_of, recipe_model
from .verify import VerifyResult, verify
from .wrapper import FlatKV, export_plain

__all__ = [
    "ExportError", "ExportGateError", "ExportResult", "FlatKV", "GRAPHS", "ParityReport", "PhaseParity", "Precision",
    "TOLERANCES", "Tolerance", "VerifyResult", "dequantized", "export_model", "export_onnx", "export_plain",
    "genai_config", "load_recipe", "pack_plain", "parity_gate", "precision_of",
    "read_manifest", "recipe_model", "verify",
]
