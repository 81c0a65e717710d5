"""Time one recipe at a deployment target's shape (`workbench.measure.target`), with the wall time and peak memory it took.

    python scripts/bench_target.py --target glm-edge-1.5b --recipe '{}'
    python scripts/bench_target.py --target glm-edge-1.5b --recipe '{"quant": {"method": "rtn", "bits": 4}}'
    python scripts/bench_target.py --target autoglm-phone-9b --recipe '{"quant": {"method": "rtn", "bits": 4}}' --json

Measures afresh (no results store) unless `--store PATH` is given. Run one at a time: the timings
share the machine's cores and memory bandwidth. Not part of the tests.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.measure.target import DEFAULT_CONTEXT, TARGETS, measure_target  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Args: argv: command line (see module doc). Returns: exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=sorted(TARGETS), default="glm-edge-1.5b")
    ap.add_argument("--recipe", default="{}", help="recipe JSON (or a path to one)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--context", type=int, default=DEFAULT_CONTEXT)
    ap.add_argument("--store", default=None, help="a results store to cache in (default: measure afresh)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    store = None
    if args.store:
        from workbench.store import ResultsStore

        store = ResultsStore(args.store)
    t0 = time.perf_counter()
    rec = measure_target(args.recipe, args.target, store=store, threads=args.threads, context_tokens=args.context,
                         progress=not args.json)
    out = {**rec.to_json(), "wall_s": round(time.perf_counter() - t0, 1),
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{rec.name} {rec.engine}: decode {rec.decode_ms_per_token:.1f} ms/token "
              f"(p90 {rec.decode_ms_per_token_p90:.1f}), prefill {rec.prefill_ms:.0f} ms at {rec.prefill_tokens} tokens; "
              f"{rec.method}; weights {rec.weight_bytes / 1e9:.2f} GB, at {rec.context_tokens} tokens "
              f"{rec.memory_bytes_at_context / 1e9:.2f} GB ({rec.memory_method}); "
              f"wall {out['wall_s']} s, peak RSS {out['peak_rss_bytes'] / 1e9:.1f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
