"""Where a decode step's time goes, per operator, from ONNX Runtime's own profiler.

Open the session with `make_session(path, profile_prefix=...)`; after the steps to look at,
`session.end_profiling()` returns a JSON trace (Chrome trace format: one "Node" event per kernel run,
`args.op_name` its operator, one "Session" `model_run` event per run). `per_step` sums the kernel
time per operator type, divided by the runs counted, so two graphs or two context lengths compare
line by line; `table` prints it.

    sess = make_session(path, threads=2, profile_prefix="/tmp/step")
    ...                                   # the prefill, then the decode steps
    print(table(per_step(sess.end_profiling(), skip_runs=1)))   # the prefill's events dropped
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class OpTime:
    """One operator type's kernel time per step: milliseconds, share of the step's kernel time, kernels run."""

    op: str
    ms: float
    share: float
    calls: float


def _is_run(e: dict) -> bool:
    return e.get("cat") == "Session" and e.get("name") == "model_run"


def per_step(trace: str | os.PathLike, skip_runs: int = 0) -> list[OpTime]:
    """Per-step kernel time by operator type, largest first.

    Args:
        trace: the JSON file `InferenceSession.end_profiling()` returned.
        skip_runs: runs at the start not to count (the prefill, a warm-up); their events are dropped by time.
    Returns:
        [OpTime], shares summing to 1.
    Raises:
        ValueError: the file is not an ONNX Runtime profile (no kernel events), or has no runs past `skip_runs`.
    """
    try:
        with open(trace) as f:
            events = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{trace}: not a readable profile trace ({e}); pass the path end_profiling() returned") from e
    ends = sorted(e["ts"] + e.get("dur", 0) for e in events if _is_run(e))
    if len(ends) <= skip_runs:
        raise ValueError(f"{trace}: {len(ends)} runs recorded, cannot skip {skip_runs}; run more steps")
    cut = ends[skip_runs - 1] if skip_runs else float("-inf")
    us: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for e in events:
        if e.get("ts", 0) > cut and e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            us[op] += float(e.get("dur", 0))
            calls[op] += 1
    if not us:
        raise ValueError(f"{trace}: no kernel events; is it a trace from InferenceSession.end_profiling()?")
    total, runs = sum(us.values()), len(ends) - skip_runs
    return sorted((OpTime(op, t / runs / 1e3, t / total, calls[op] / runs) for op, t in us.items()),
                  key=lambda o: -o.ms)


def table(ops: list[OpTime], top: int = 12) -> str:
    """The profile as text: operator, ms per step, share, kernels per step."""
    lines = [f"{'operator':34s} {'ms/step':>8s} {'share':>6s} {'calls':>6s}"]
    for o in ops[:top]:
        lines.append(f"{o.op:34s} {o.ms:8.2f} {100 * o.share:5.1f}% {o.calls:6.0f}")
    lines.append(f"{'kernel time in all':34s} {sum(o.ms for o in ops):8.2f}")
    return "\n".join(lines)
