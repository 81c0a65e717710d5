"""Command line: `workbench evaluate` prints the measured report of a model on an episode file."""
from __future__ import annotations

import argparse
import json
import sys

from .model import ModelLoadError
from .task import EpisodeError


def _evaluate(args) -> int:
    from .measure import evaluate

    report = evaluate(args.model, args.episodes, limit=args.limit, recipe=args.recipe,
                      progress=not args.json)
    data = report.to_json()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    acc, lat, mem = data["accuracy"], data["latency"], data["memory"]
    print(f"model      {data['provenance']['model']} ({data['provenance']['model_fingerprint']})")
    print(f"episodes   {data['provenance']['episodes']} ({acc['n']} steps)")
    print(f"accuracy   step {acc['step']:.3f}  type {acc['type']:.3f}  exact {acc['exact']:.3f}  "
          f"parse failures {acc['parse_failure']:.3f}"
          + (f"  KL {acc['kl']:.4f}  ppl {acc['ppl']:.3f}" if "kl" in acc else ""))
    if data["provenance"].get("recipe"):
        print(f"recipe     {json.dumps(data['provenance']['recipe'])}")
    print(f"latency    prefill {lat['prefill_ms']:.1f} ms ({lat['prompt_tokens']} tokens, "
          f"p90 {lat['prefill_ms_p90']:.1f})  decode {lat['decode_ms_per_token']:.2f} ms/token "
          f"(p90 {lat['decode_ms_per_token_p90']:.2f}, {lat['tokens_per_s']:.0f} tok/s)  [{lat['engine']}]")
    print(f"memory     weights {mem['weight_bytes'] / 2**20:.1f} MiB  KV peak {mem['kv_bytes'] / 2**20:.2f} MiB "
          f"({mem['kv_bytes_per_token']:.0f} B/token)  peak RSS {mem['peak_rss_bytes'] / 2**20:.0f} MiB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="AutoGLM Workbench command line.")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="measure accuracy, latency and memory of a model")
    ev.add_argument("--model", default=None,
                    help="HF-format GLM checkpoint folder (default: the embedded open-autoglm-tiny)")
    ev.add_argument("--episodes", default=None, help="JSONL episode file (default: data/episodes/eval.jsonl)")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N steps")
    ev.add_argument("--recipe", default=None,
                    help="recipe JSON file (prune / quant sections); reports the optimized model "
                         "with KL and perplexity against the unoptimized one")
    ev.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ev.set_defaults(run=_evaluate)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        print("workbench: error: --limit must be >= 1", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (ModelLoadError, EpisodeError, ValueError) as e:
        print(f"workbench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
