"""Benchmark: a vision-language model (Glm4v) on screenshot steps, both engines, three recipes, in one run.

    python scripts/bench_vlm.py [--model FOLDER] [--steps 8] [--repeats 5] [--json]

Without --model, a random-weight Glm4v is written to a temporary folder (`--layers`, `--hidden`,
`--max-image-tokens`). For each recipe (float32; int4 RTN g32 on the language model; the same with the
vision tower, scope "all") and each engine (ONNX Runtime on the three graphs the export writes;
PyTorch eager) it prints vision / prefill / decode milliseconds (median of repeats after warm-up), the
bytes of the weights and of the vision tower, the image tokens, KL to the float model and how long the
point took to measure. Ratios are against float32 on the same engine, in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

INT4 = {"method": "rtn", "bits": 4, "group_size": 32}
RECIPES = {"float32": {}, "int4 language": {"quant": INT4}, "int4 all": {"quant": {**INT4, "scope": "all"}}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a Glm4v checkpoint folder (default: a random one)")
    p.add_argument("--layers", type=int, default=2, help="decoder layers of the random model")
    p.add_argument("--hidden", type=int, default=None, help="hidden size of the random model (multiple of 128)")
    p.add_argument("--max-image-tokens", type=int, default=96, help="the random model's image-token budget")
    p.add_argument("--steps", type=int, default=8, help="screenshot steps per point")
    p.add_argument("--repeats", type=int, default=5, help="timed latency repeats")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    from workbench.calib import default_calibration
    from workbench.measure.point import PointMeter
    from workbench.model import load_model, write_random_checkpoint
    from workbench.model.vision import load_processor
    from workbench.task import DEFAULT_EPISODES, load_steps

    tmp = tempfile.TemporaryDirectory(prefix="bench-vlm-")
    folder = args.model or os.path.join(tmp.name, "glm4v")
    if args.model is None:
        write_random_checkpoint(folder, "glm4v", num_layers=args.layers, hidden_size=args.hidden,
                                max_image_tokens=args.max_image_tokens)
    model, tok = load_model(folder)
    proc = load_processor(folder)
    steps = load_steps(DEFAULT_EPISODES, limit=args.steps)
    calib = default_calibration(tok, n=8, processor=proc)
    rows = []
    for engine in ("ort", "pytorch"):
        meter = PointMeter(model, tok, steps, calib, processor=proc, latency_repeats=args.repeats, engine=engine)
        base = None
        for name, recipe in RECIPES.items():
            pt = meter(recipe)
            base = base or pt
            rows.append({"engine": engine, "recipe": name, "ran_on": pt.engine, "vision_ms": pt.vision_ms.median,
                         "prefill_ms": pt.prefill_ms.median, "decode_ms_per_token": pt.decode_ms.median,
                         "decode_vs_float32": pt.decode_ms.median / base.decode_ms.median,
                         "weight_bytes": pt.weight_bytes, "vision_weight_bytes": pt.vision_weight_bytes,
                         "vision_bytes_vs_float32": pt.vision_weight_bytes / base.vision_weight_bytes,
                         "image_tokens": pt.image_tokens, "prompt_tokens": pt.prompt_tokens, "kl": pt.kl,
                         "seconds_to_measure": pt.seconds, "steps": pt.n})
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
               "threads": torch.get_num_threads()}
    if args.json:
        for r in rows:
            print(json.dumps({**r, "machine": machine}))
        return 0
    print(f"machine: {machine}")
    print(f"{'engine':<8} {'recipe':<14} {'vision ms':>9} {'prefill ms':>10} {'decode ms':>9} {'x f32':>6} "
          f"{'weights MiB':>11} {'vision MiB':>10} {'KL':>8} {'measure s':>9}")
    for r in rows:
        print(f"{r['engine']:<8} {r['recipe']:<14} {r['vision_ms']:9.2f} {r['prefill_ms']:10.1f} "
              f"{r['decode_ms_per_token']:9.2f} {r['decode_vs_float32']:6.2f} {r['weight_bytes'] / 2**20:11.2f} "
              f"{r['vision_weight_bytes'] / 2**20:10.3f} {r['kl']:8.4f} {r['seconds_to_measure']:9.1f}")
    print(f"image tokens {rows[0]['image_tokens']} of {rows[0]['prompt_tokens']} prompt tokens; {args.steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
