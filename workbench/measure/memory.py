"""Memory figures: weight bytes as stored and the process's peak resident set."""
from __future__ import annotations

import resource
import sys

import torch


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's saved state (parameters and persistent buffers) as stored in memory.

    Each storage counts once (tied weights once); packed low-bit tensors count at their packed
    size, since they are stored that way. Non-persistent buffers (e.g. rotary tables) are excluded.
    torch.ao's dynamic int8 Linears (W8A8) keep their weight in packed params, outside the tensor
    state: each counts as its int8 weight, per-channel scales and zero points, and bias
    (`workbench.quant.report.module_bytes`).
    """
    from ..quant.report import is_dynamic_int8, module_bytes

    seen, total = set(), 0
    int8 = {name for name, m in model.named_modules() if is_dynamic_int8(m)}
    total += sum(module_bytes(model.get_submodule(name)) for name in int8)
    for name, t in model.state_dict(keep_vars=True).items():
        if not isinstance(t, torch.Tensor) or name.rsplit(".", 2)[0] in int8 or name.rsplit(".", 1)[0] in int8:
            continue
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
