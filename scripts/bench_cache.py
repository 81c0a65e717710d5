"""KV-cache policies on the eval episodes, measured in one run: accuracy, KV bytes, prefill, decode, step time.

Each setting greedy-decodes the eval steps in episode order through `workbench.measure.measure_cache`
(PyTorch eager, batch 1) and prints one row; the issue's three comparisons are printed as ratios of
rows of this same run:
- prefix cache (system prompt preloaded, then each episode's goal and history reused) vs none:
  mean prefill ms per agent step;
- int8 KV vs full: KV bytes held and step accuracy;
- `none` (recompute everything per token; slow, so on `--none-limit` steps) vs full: decode ms/token.

    python scripts/bench_cache.py                  # whole eval split (~10 min on 2 idle cores)
    python scripts/bench_cache.py --limit 100 --json /tmp/cache.json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.cache import CacheConfig  # noqa: E402
from workbench.measure import DEFAULT_EPISODES  # noqa: E402
from workbench.measure.cache import measure_cache  # noqa: E402
from workbench.model import load_model  # noqa: E402
from workbench.task import load_steps  # noqa: E402

SETTINGS = {
    "full": CacheConfig(policy="full"),
    "full+prefix": CacheConfig(policy="full", prefix_capacity_mb=64),
    "int8": CacheConfig(policy="int8"),
    "int8+prefix": CacheConfig(policy="int8", prefix_capacity_mb=64),
    "sliding512": CacheConfig(policy="sliding", window=512, sinks=4),
    "sliding256": CacheConfig(policy="sliding", window=256, sinks=4),
    "none": CacheConfig(policy="none"),
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: open-autoglm-tiny)")
    p.add_argument("--episodes", default=str(DEFAULT_EPISODES))
    p.add_argument("--limit", type=int, default=None, help="first N steps")
    p.add_argument("--none-limit", type=int, default=40, help="steps for the slow `none` policy")
    p.add_argument("--only", nargs="*", choices=list(SETTINGS), help="settings to run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the records here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, tok = load_model(a.model)
    model.eval()
    steps = load_steps(a.episodes, limit=a.limit)
    rows = {}
    print(f"{'setting':<13} {'steps':>5} {'step acc':>8} {'KV bytes':>10} {'B/token':>8} {'prefill ms':>10} "
          f"{'(median)':>8} {'decode ms':>9} {'step ms':>8} {'hit rate':>8} {'saved':>6} {'prefix MB':>9}")
    for name in a.only or SETTINGS:
        run_steps = steps[:a.none_limit] if name == "none" else steps
        rec, _ = measure_cache(model, tok, run_steps, SETTINGS[name], progress=False)
        rows[name] = rec
        print(f"{name:<13} {rec.n:>5} {rec.step:>8.3f} {rec.kv_bytes:>10} {rec.kv_bytes_per_token:>8.0f} "
              f"{rec.prefill_ms_mean:>10.1f} {rec.prefill_ms.median:>8.1f} {rec.decode_ms_per_token.median:>9.2f} "
              f"{rec.step_ms_mean:>8.1f} {rec.prefix_hit_rate:>8.2f} {rec.prefill_tokens_saved_share:>6.2f} "
              f"{rec.prefix_bytes / 2**20:>9.1f}", flush=True)
    print()
    if {"full", "full+prefix"} <= rows.keys():
        f, fp = rows["full"], rows["full+prefix"]
        print(f"prefix cache: mean prefill per step {f.prefill_ms_mean:.1f} -> {fp.prefill_ms_mean:.1f} ms "
              f"({f.prefill_ms_mean / fp.prefill_ms_mean:.2f}x less; {fp.prefill_tokens_saved_share:.0%} of prompt "
              f"tokens reused); mean step {f.step_ms_mean:.1f} -> {fp.step_ms_mean:.1f} ms; same actions: "
              f"step accuracy {f.step:.3f} vs {fp.step:.3f}")
    if {"full", "int8"} <= rows.keys():
        f, q = rows["full"], rows["int8"]
        print(f"int8 KV: {f.kv_bytes} -> {q.kv_bytes} bytes held ({f.kv_bytes / q.kv_bytes:.2f}x less); "
              f"step accuracy {f.step:.3f} -> {q.step:.3f} ({(q.step - f.step) * 100:+.1f} points); "
              f"decode {f.decode_ms_per_token.median:.2f} -> {q.decode_ms_per_token.median:.2f} ms/token")
    if {"full", "none"} <= rows.keys():
        f, n = rows["full"], rows["none"]
        print(f"no cache: decode {n.decode_ms_per_token.median:.2f} ms/token vs {f.decode_ms_per_token.median:.2f} "
              f"with a full cache ({n.decode_ms_per_token.median / f.decode_ms_per_token.median:.1f}x slower)")
    if a.json:
        Path(a.json).write_text(json.dumps({k: asdict(v) for k, v in rows.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
