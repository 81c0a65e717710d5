"""How many MLP channels and query heads a structured-pruning ratio keeps: one rule for the knob and
for the deployment targets (`workbench.measure.target` applies it to GLM-Edge / AutoGLM-Phone shapes)."""
from __future__ import annotations

import math

CHANNEL_MULTIPLE = 8  # kept MLP channels are a multiple of 8: friendlier to SIMD / GEMM kernel tiles


def kept_channels(n: int, ratio: float, multiple: int = CHANNEL_MULTIPLE) -> int:
    """Channels kept of `n` at `ratio`: n * (1 - ratio) to the nearest multiple, within [multiple, n].

    ratio 0 keeps all n (even when n is not a multiple). E.g. n=128, ratio 0.3 -> 88.
    """
    if ratio == 0:
        return n
    k = math.floor(n * (1 - ratio) / multiple + 0.5) * multiple
    return min(n, max(k, min(multiple, n)))


def kept_heads_per_group(group: int, ratio: float) -> int:
    """Query heads kept per KV group of `group` heads: group - round(ratio * group) (half up).

    Raises:
        ValueError: when no head would stay, naming the largest ratio that keeps one.
    """
    removed = math.floor(ratio * group + 0.5)
    if group - removed < 1:
        raise ValueError(
            f"prune.ratio {ratio} leaves 0 query heads per KV group ({group} per group); heads pruning "
            f"can remove at most {group - 1} of {group} per group (prune.ratio < {(group - 0.5) / group:g})")
    return group - removed
