"""Quantization knob: one config per method (RTN, GPTQ), packed low-bit layers and their SQNR report.

    from workbench.quant import RTNConfig, quantize_
    report = quantize_(model, RTNConfig(bits=4, group_size=32))   # in place; QuantReport
"""
from .base import ACTIVATIONS, BITS, GROUP_SIZES, quantize_
from .gptq import GPTQConfig
from .packed import BF16Linear, PackedLinear, pack, pack_linear_, unpack
from .report import LayerQuant, QuantReport, effective_weight, layer_sqnr
from .rtn import RTNConfig

METHODS = {"rtn": RTNConfig, "gptq": GPTQConfig}  # the recipe JSON's quant.method names

__all__ = [
    "ACTIVATIONS", "BITS", "BF16Linear", "GPTQConfig", "GROUP_SIZES", "LayerQuant", "METHODS",
    "PackedLinear", "QuantReport", "RTNConfig", "effective_weight", "layer_sqnr", "pack",
    "pack_linear_", "quantize_", "unpack",
]
