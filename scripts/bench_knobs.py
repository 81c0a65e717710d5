"""Every pruning and quantization transform on a random GlmForCausalLM at GLM-Edge-1.5B layer shapes.

GLM-Edge-1.5B (GlmForCausalLM): hidden 2048, 16 query heads and 4 KV heads of 128, MLP 6144, vocab
59264, 28 layers. Here with `--layers` decoder layers (default 2) and random weights: the point is
that each transform runs at real layer shapes on this 24 GiB machine, and what it does to weight
bytes and decode latency; accuracy needs real weights, which cannot be downloaded here.

Each recipe goes through `apply_recipe` (a deep copy of the baseline, as in the product) and prints
one row: transform seconds, weight bytes as stored, decode ms/token (median of `--repeats` after
warm-up, batch 1, `--past` tokens of context) and the process's peak RSS so far.

    python scripts/bench_knobs.py                 # all recipes, 2 layers (~10 min on 2 cores)
    python scripts/bench_knobs.py --layers 1 --only magnitude rtn
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformers import GlmConfig, GlmForCausalLM  # noqa: E402

from workbench.measure.latency import measure_latency  # noqa: E402
from workbench.measure.memory import peak_rss_bytes, weight_bytes  # noqa: E402
from workbench.measure.target import TARGETS  # noqa: E402
from workbench.recipe import Recipe, apply_recipe  # noqa: E402

EDGE_1P5B = dict(TARGETS["glm-edge-1.5b"].config_kwargs(), partial_rotary_factor=0.5, attention_bias=True,
                 max_position_embeddings=8192, tie_word_embeddings=False)

RECIPES = [
    {},
    {"prune": {"method": "magnitude", "ratio": 0.5}},
    {"prune": {"method": "wanda", "ratio": 0.5}},
    {"prune": {"method": "sparsegpt", "ratio": 0.5}},
    {"prune": {"method": "magnitude", "ratio": 0.5, "pattern": "2:4"}},
    {"prune": {"method": "wanda", "ratio": 0.5, "pattern": "2:4"}},
    {"prune": {"method": "sparsegpt", "ratio": 0.5, "pattern": "2:4"}},
    {"prune": {"method": "channels", "ratio": 0.3}},
    {"prune": {"method": "heads", "ratio": 0.25}},
    {"quant": {"method": "rtn", "bits": 8, "group_size": 32}},
    {"quant": {"method": "rtn", "bits": 4, "group_size": 32}},
    {"quant": {"method": "rtn", "bits": 8, "activations": "int8"}},
    {"quant": {"method": "gptq", "bits": 4, "group_size": 32}},
]


def edge_model(layers: int, vocab: int = EDGE_1P5B["vocab_size"], seed: int = 0) -> GlmForCausalLM:
    """Random GLM-Edge-1.5B-shaped model with `layers` decoder layers (float32, eval mode)."""
    torch.manual_seed(seed)
    cfg = GlmConfig(**dict(EDGE_1P5B, vocab_size=vocab, num_hidden_layers=layers),
                    pad_token_id=0, eos_token_id=1, bos_token_id=None)
    return GlmForCausalLM(cfg).eval()


def label(recipe: dict) -> str:
    if not recipe:
        return "baseline (fp32)"
    kind, body = next(iter(recipe.items()))
    return kind + " " + " ".join(f"{k}={v}" for k, v in body.items() if k != "method") + f" [{body['method']}]"


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=EDGE_1P5B["vocab_size"], help="smaller: a lighter smoke run")
    p.add_argument("--calib", type=int, default=8, help="calibration batches of --calib-len random tokens")
    p.add_argument("--calib-len", type=int, default=256)
    p.add_argument("--past", type=int, default=256, help="context tokens before the timed decode steps")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", nargs="*", default=None, help="run only recipes whose method is listed")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    a = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = edge_model(a.layers, a.vocab)
    gen = torch.Generator().manual_seed(1)
    calib = [torch.randint(2, a.vocab, (1, a.calib_len), generator=gen) for _ in range(a.calib)]
    prompt = torch.randint(2, a.vocab, (1, a.past), generator=gen)
    rows = []
    print(f"GLM-Edge-1.5B shapes, {a.layers} layer(s), {sum(p_.numel() for p_ in model.parameters()) / 1e6:.0f} M "
          f"parameters; decode after {a.past} tokens, batch 1, {torch.get_num_threads()} threads")
    print(f"{'recipe':48s} {'apply s':>8s} {'weight MiB':>11s} {'decode ms':>10s} {'peak RSS GiB':>13s}  kernels")
    for recipe in RECIPES:
        if a.only is not None and recipe and next(iter(recipe.values()))["method"] not in a.only:
            continue
        t0 = time.perf_counter()
        new, reports = apply_recipe(model, Recipe.from_json(recipe), calib=calib)
        apply_s = time.perf_counter() - t0
        lat = measure_latency(new, prompt, decode_tokens=8, warmup=1, repeats=a.repeats)
        kernels = ",".join(getattr(reports.get("quant"), "kernels", ())) or "fp32"
        row = {"recipe": recipe, "apply_s": round(apply_s, 1), "weight_bytes": weight_bytes(new),
               "decode_ms": lat.decode_ms_per_token.median, "prefill_ms": lat.prefill_ms.median,
               "peak_rss_bytes": peak_rss_bytes(), "kernels": kernels}
        rows.append(row)
        print(f"{label(recipe):48s} {apply_s:8.1f} {row['weight_bytes'] / 2**20:11.1f} {row['decode_ms']:10.1f} "
              f"{row['peak_rss_bytes'] / 2**30:13.2f}  {kernels}", flush=True)
        del new, reports
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
