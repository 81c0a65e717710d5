"""Memory figures: weight bytes as stored and the process's peak resident set."""
from __future__ import annotations

import resource
import sys

import torch


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's saved state (parameters and persistent buffers) as stored in memory.

    Each storage counts once (tied weights once); packed low-bit tensors count at their packed
    size, since they are stored that way. Non-persistent buffers (e.g. rotary tables) are excluded.
    """
    seen, total = set(), 0
    for t in model.state_dict(keep_vars=True).values():
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
