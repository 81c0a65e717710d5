"""Round-to-nearest weight quantization: packed 8/4/3/2-bit weights, bfloat16 weights, or W8A8 int8.

What each setting stores and runs (per selected Linear; the layer's `kernel` says which path runs):
- bits 8, 4, 3, 2 (activations "none"): weights fit on the shared grid (`grid.fit/quantize`, scales
  rounded to their float16 storage first so the codes match the stored grid) and stored packed in a
  `PackedLinear`; forward dequantizes to float32 on the fly ("dequant-fp32"). This is the honest
  "weights stored in n bits": memory drops for real, but on CPU it runs slower than float32.
- bits 16: weights stored in bfloat16 (`BF16Linear`, "bf16"); input cast to bfloat16 for the matmul.
- activations "int8" (needs bits 8): W8A8 through a real int8 CPU kernel, torch.ao's dynamic
  quantized Linear ("torch-int8-dynamic"): int8 weights with one scale per output channel
  (symmetric, or affine if `symmetric=False`), activations quantized per tensor to 8 bits at run
  time. Packed with the qnnpack engine where available: x86/fbgemm quantize activations to 7 bits
  (reduce_range) and lose ~4 dB of output SQNR. (torch then prints once, from C++, "qnnpack
  incorrectly ignores reduce_range": that is the behaviour wanted here.) The global engine is
  restored afterwards; forward does not depend on it, but a deepcopy/pickle of the model repacks
  under the engine then active.
  The kernel has no groups, so `group_size` does not apply (layers report group_size 0); it is
  likewise unused for bits 16.
Weight-only int8 goes through `PackedLinear` (stored int8, computed in float32); the int8 matmul
kernel is used only with int8 activations.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from ..select import check_scope, default_filter, selected_linears
from . import grid
from .base import ACTIVATIONS, BITS, GROUP_SIZES, quantize_
from .packed import BF16Linear, pack_linear_, stored_scale
from .report import QuantReport, layer_record

INT8_ENGINE = "qnnpack"


@dataclass(frozen=True)
class RTNConfig:
    """Round-to-nearest: bits (16 = bfloat16), input columns per scale group (0: per output
    channel), symmetric grid, activations ("int8": W8A8 dynamic, needs bits 8)."""

    bits: int = 8
    group_size: int = 32
    symmetric: bool = True
    activations: str = "none"
    scope: str = "language"  # "all": the vision tower's Linears too (workbench.select.SCOPES)

    def __post_init__(self):
        check_scope(self.scope, "quant")
        if type(self.bits) is not int or self.bits not in BITS:
            raise ValueError(f"quant.bits must be one of {', '.join(map(str, BITS))}, got {self.bits!r}")
        if type(self.group_size) is not int or self.group_size not in GROUP_SIZES:
            raise ValueError(f"quant.group_size must be one of {', '.join(map(str, GROUP_SIZES))} "
                             f"(0: per output channel), got {self.group_size!r}")
        if not isinstance(self.symmetric, bool):
            raise ValueError(f"quant.symmetric must be true or false, got {self.symmetric!r}")
        if self.activations not in ACTIVATIONS:
            raise ValueError(f"quant.activations must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {self.activations!r}")
        if self.activations == "int8" and self.bits != 8:
            raise ValueError(f"quant.activations 'int8' needs quant.bits 8 (W8A8), got bits {self.bits}")


def _check_layers(layers: dict[str, nn.Module], config: RTNConfig) -> None:
    """Refuse before touching anything: only float Linears, and the group size must fit each layer."""
    for name, m in layers.items():
        if type(m) is not nn.Linear:
            raise ValueError(f"rtn: layer {name} is a {type(m).__name__}, not a float nn.Linear "
                             f"(already quantized?)")
        grouped = config.bits in (8, 4, 3, 2) and config.activations == "none"
        if grouped and config.group_size and m.in_features % config.group_size:
            raise ValueError(f"quant.group_size {config.group_size} does not divide in_features "
                             f"{m.in_features} of layer {name}: use 0 (per channel) or a divisor")


@quantize_.register(RTNConfig)
@torch.no_grad()
def rtn_(model: nn.Module, config: RTNConfig, *, calib=None, filter_fn=default_filter) -> QuantReport:
    """Quantize the selected Linears of `model` in place by round-to-nearest.

    Args:
        model: the model (mutated: layers are replaced).
        config: RTNConfig.
        calib: unused (RTN needs no calibration data).
        filter_fn: `filter_fn(module, name)` picks the layers (default: decoder Linears, no lm_head).
    Returns:
        QuantReport: per layer the kernel that runs, weight SQNR and output SQNR on a random N(0, 1)
        input (dB), bytes before and after.
    """
    layers = selected_linears(model, filter_fn)
    _check_layers(layers, config)
    if config.activations == "int8":
        return QuantReport("rtn", tuple(_w8a8(model, layers, config.symmetric)))
    records = []
    for name, lin in layers.items():
        if config.bits == 16:
            new = BF16Linear(lin)
            model.set_submodule(name, new)
            records.append(layer_record(name, lin, new, 16, -1))
            continue
        w = lin.weight.detach().float()  # (out, in)
        scale, zero = grid.fit(w, config.bits, config.group_size, config.symmetric)  # (out, n_groups)
        scale = stored_scale(scale).float()  # the grid as stored (float16 unless out of range)
        q = grid.quantize(w, scale, zero, config.bits, config.group_size)  # (out, in) uint8
        new = pack_linear_(model, name, q, scale, zero, config.bits, config.group_size)
        records.append(layer_record(name, lin, new, config.bits, config.group_size))
    return QuantReport("rtn", tuple(records))


def _w8a8(model: nn.Module, layers: dict[str, nn.Module], symmetric: bool) -> list:
    """Swap each layer for torch.ao's dynamic int8 Linear, packed under the qnnpack engine."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
    from torch.ao.quantization import PerChannelMinMaxObserver, PlaceholderObserver, QConfig

    qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    qconfig = QConfig(activation=PlaceholderObserver.with_args(dtype=torch.quint8, is_dynamic=True),
                      weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=qscheme))
    previous = torch.backends.quantized.engine
    records = []
    try:
        if INT8_ENGINE in torch.backends.quantized.supported_engines:
            torch.backends.quantized.engine = INT8_ENGINE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao eager quantization deprecation notices
            for name, lin in layers.items():
                lin.qconfig = qconfig
                new = DynamicInt8Linear.from_float(lin)
                del lin.qconfig
                model.set_submodule(name, new)
                records.append(layer_record(name, lin, new, 8, 0))
    finally:
        torch.backends.quantized.engine = previous
    return records
