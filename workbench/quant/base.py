"""What every weight quantizer shares: the `quantize_` registry and layer selection."""
from __future__ import annotations

from ..select import default_filter, selected_linears
from ..registry import Registry

quantize_ = Registry("quant")

BITS = (16, 8, 4, 3, 2)
GROUP_SIZES = (0, 32, 64, 128)  # 0: per output channel
ACTIVATIONS = ("none", "int8")

__all__ = ["ACTIVATIONS", "BITS", "GROUP_SIZES", "default_filter", "quantize_", "selected_linears"]
