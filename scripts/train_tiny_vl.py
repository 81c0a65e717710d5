"""Train open-autoglm-tiny-vl: a small Glm4vForConditionalGeneration that reads rendered screenshots.

The phone-agent task as Open-AutoGLM runs it (the `open-autoglm` prompt mode: its system prompt,
the screenshot, the task and the current app, the earlier answers as assistant turns), on steps of
the `train` seed stream whose screens `workbench.task.render` draws on the fly. The text decoder has
open-autoglm-tiny's shape and starts from its weights (`--init`: its tokenizer plus GLM-4.1V's image
and answer tokens); the vision tower (GLM-4.1V's patch embedding, 2-D rotary, 2x2 merger, scaled
down) starts from random weights.

Two kinds of sample in every batch: the agent's step (loss on the answer
``<think></think><answer>{action}</answer>`` + EOS, and a weighted loss on the user turn's text),
and grounding samples (``--ground``): a screen of the same stream with the goal ``Tap {label}`` for
one of its labelled, clickable elements and the answer a tap at its centre, a dense signal that
teaches the tower to read labels and place them. The shared system prompt runs once per batch and
its KV cache is broadcast over the batch (gradients flow through it).

    python scripts/train_tiny_vl.py                                   # the committed model + its card
    python scripts/train_tiny_vl.py --out /tmp/smoke --iters 3 --train-steps 200 --no-eval   # smoke test
    python scripts/train_tiny_vl.py --card-only                       # re-measure the model, rewrite the card
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from gen_episodes import generate  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from train_tiny import action_type  # noqa: E402
from transformers import AutoTokenizer, Glm4vConfig, Glm4vForConditionalGeneration  # noqa: E402

from workbench.measure.provenance import CPU_FLAGS, machine  # noqa: E402
from workbench.model.vision import (ScreenProcessor, add_vision_tokens, answer_ids,  # noqa: E402
                                    image_processor_for, with_tokens)
from workbench.task.open_autoglm import earlier_apps, messages  # noqa: E402
from workbench.task.render import PALETTE_COLORS, render_screen  # noqa: E402

OUT = ROOT / "data" / "open-autoglm-tiny-vl"
INIT = ROOT / "data" / "open-autoglm-tiny"
EVAL = ROOT / "data" / "episodes" / "eval.jsonl"
VISION_SHAPE = dict(depth=2, hidden_size=128, num_heads=4, intermediate_size=512, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, image_size=336)


def build(init: Path, max_image_tokens: int, seed: int):
    """(processor, model): open-autoglm-tiny's tokenizer and text weights in a Glm4v with a new vision tower."""
    from transformers import Glm4ForCausalLM

    tok = copy.deepcopy(AutoTokenizer.from_pretrained(init, local_files_only=True))
    image_ids = add_vision_tokens(tok)
    processor = ScreenProcessor(tok, image_processor_for(max_image_tokens))
    text = Glm4ForCausalLM.from_pretrained(init, local_files_only=True).float()
    tc = text.config
    keys = dict(image_token_id="<|image|>", video_token_id="<|video|>", image_start_token_id="<|begin_of_image|>",
                image_end_token_id="<|end_of_image|>", video_start_token_id="<|begin_of_video|>",
                video_end_token_id="<|end_of_video|>")
    rope = dict(tc.rope_parameters, mrope_section=[2, 3, 3])  # 8 rotary pairs: GLM-4.1V's [8, 12, 12] / 4
    cfg = Glm4vConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=tc.hidden_size, intermediate_size=tc.intermediate_size,
                         num_hidden_layers=tc.num_hidden_layers, num_attention_heads=tc.num_attention_heads,
                         num_key_value_heads=tc.num_key_value_heads, max_position_embeddings=tc.max_position_embeddings,
                         rms_norm_eps=tc.rms_norm_eps, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         rope_parameters=rope, attention_bias=True),
        vision_config=dict(VISION_SHAPE, out_hidden_size=tc.hidden_size),
        tie_word_embeddings=True, **{k: image_ids[t] for k, t in keys.items()})
    torch.manual_seed(seed)
    model = Glm4vForConditionalGeneration(cfg)
    lm = model.model.language_model
    state = {k.removeprefix("model."): v for k, v in text.state_dict().items() if k.startswith("model.")}
    emb = state.pop("embed_tokens.weight")
    missing, unexpected = lm.load_state_dict(state, strict=False)
    assert missing == ["embed_tokens.weight"] and not unexpected, (missing, unexpected)
    with torch.no_grad():  # new tokens start at the mean embedding
        lm.embed_tokens.weight[:emb.shape[0]] = emb
        lm.embed_tokens.weight[emb.shape[0]:] = emb.mean(0)
    model.tie_weights()
    return processor, model


def grounding_step(step, rng: random.Random):
    """A step on the same screen whose goal is `Tap {label}` and answer a tap at that element's centre
    (None when the screen has no labelled clickable element)."""
    nodes = [n for n in step.screen if n.clickable and (n.text or n.content_desc).strip()
             and n.bounds[2] > n.bounds[0] and n.bounds[3] > n.bounds[1]]
    if not nodes:
        return None
    n = rng.choice(nodes)
    x, y = n.center
    return replace(step, goal=f"Tap {(n.text or n.content_desc).strip()}", history=(),
                   target=f'do(action="Tap", element=[{x},{y}])', target_box=n.bounds)


def screenshot(screen):
    """The screen as the shipped PNGs hold it (`render_png`'s palette quantization), in RGB, without a PNG."""
    from PIL import Image

    return render_screen(screen).quantize(colors=PALETTE_COLORS, method=Image.Quantize.MEDIANCUT,
                                          dither=Image.Dither.NONE).convert("RGB")


def encode(processor: ScreenProcessor, step, apps, prefix_len: int):
    """One sample: the step's inputs after the shared prefix, with its answer, as plain tensors."""
    image = screenshot(step.screen)
    x = processor(messages(step, apps=apps), [image])
    answer = answer_ids(processor, step)
    x = with_tokens(x, answer)
    ids = x["input_ids"][0]
    return dict(ids=ids[prefix_len:], mm=x["mm_token_type_ids"][0][prefix_len:], n_answer=len(answer),
                pixel_values=x["pixel_values"], grid=x["image_grid_thw"])


def collate(samples, pad: int):
    T = max(len(s["ids"]) for s in samples)
    B = len(samples)
    ids = torch.full((B, T), pad, dtype=torch.long)
    mm = torch.zeros((B, T), dtype=torch.int32)
    y = torch.full((B, T), -100, dtype=torch.long)
    y_lm = torch.full((B, T), -100, dtype=torch.long)
    for b, s in enumerate(samples):
        n = len(s["ids"])
        ids[b, :n], mm[b, :n] = s["ids"], s["mm"]
        y[b, n - s["n_answer"]:n] = s["ids"][n - s["n_answer"]:]
        text = s["ids"][:n - s["n_answer"]].clone()
        text[s["mm"][:n - s["n_answer"]] != 0] = -100  # no loss on image tokens
        y_lm[b, :n - s["n_answer"]] = text
    return dict(ids=ids, mm=mm, y=y, y_lm=y_lm, pixel_values=torch.cat([s["pixel_values"] for s in samples]),
                grid=torch.cat([s["grid"] for s in samples]))


def loss_fn(model, prefix_ids, batch, image_token_id: int):
    """Cross-entropies of the answers and of the user-turn text, the shared prefix run once.

    The screenshots go through the vision tower, their features replace the <|image|> embeddings,
    and the M-RoPE positions come from transformers' own `get_rope_index` on the whole sequence.
    """
    lm, ids = model.model.language_model, batch["ids"]
    B, P = ids.shape[0], prefix_ids.shape[1]
    pre = lm(input_ids=prefix_ids, use_cache=True)
    cache = pre.past_key_values
    for layer in cache.layers:  # (1, kv, P, d) -> (B, kv, P, d)
        layer.keys = layer.keys.expand(B, -1, -1, -1)
        layer.values = layer.values.expand(B, -1, -1, -1)
    feats = model.model.get_image_features(batch["pixel_values"], batch["grid"], return_dict=True).pooler_output
    emb = lm.embed_tokens(ids)
    mask = (ids == image_token_id).unsqueeze(-1).expand_as(emb)
    emb = emb.masked_scatter(mask, torch.cat(feats).to(emb.dtype))
    full = torch.cat([prefix_ids.expand(B, -1), ids], 1)
    full_mm = torch.cat([torch.zeros((B, P), dtype=batch["mm"].dtype), batch["mm"]], 1)
    pos, _ = model.model.get_rope_index(full, mm_token_type_ids=full_mm, image_grid_thw=batch["grid"])
    hidden = lm(inputs_embeds=emb, position_ids=pos[:, :, P:], cache=cache, use_cache=False).last_hidden_state
    hidden = torch.cat([pre.last_hidden_state[:, -1:].expand(B, -1, -1), hidden[:, :-1]], 1)
    logits = model.lm_head(hidden).float().reshape(-1, model.lm_head.out_features)
    ce = torch.nn.functional.cross_entropy
    return ce(logits, batch["y"].reshape(-1)), ce(logits, batch["y_lm"].reshape(-1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--init", default=str(INIT), help="the text model whose tokenizer and weights start the decoder")
    p.add_argument("--train-steps", type=int, default=48000, help="agent steps generated for training")
    p.add_argument("--iters", type=int, default=1600, help="1600 fit about 70 minutes of the 2-core CPU")
    p.add_argument("--batch", type=int, default=12, help="agent steps per batch")
    p.add_argument("--ground", type=int, default=6, help="grounding samples per batch")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the text decoder")
    p.add_argument("--vision-lr", type=float, default=3e-3, help="peak learning rate of the vision tower")
    p.add_argument("--lm-weight", type=float, default=0.3, help="weight of the user-turn text loss")
    p.add_argument("--max-image-tokens", type=int, default=192,
                   help="the image processor's pixel budget in 28x28 patches per frame pair (a 360x800 screen: "
                        "192 -> 12x28 patches -> 84 image tokens)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu (the reference) or cuda where a GPU is lent")
    p.add_argument("--no-eval", action="store_true", help="skip the eval-split measurement and model card")
    p.add_argument("--card-only", action="store_true", help="only measure --out and write its model card")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.card_only:
        write_card(Path(a.out))
        return

    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    t0 = time.perf_counter()
    processor, model = build(Path(a.init), a.max_image_tokens, a.seed)
    tok = processor.tokenizer
    steps = generate("train", a.train_steps, a.seed)
    apps = earlier_apps(steps)
    system = processor.render(messages(steps[0])[:1]).removesuffix("<|assistant|>\n")
    prefix_ids = torch.tensor([tok.encode(system, add_special_tokens=False)])
    first = encode(processor, steps[0], apps[(steps[0].episode_id, steps[0].step)], 0)["ids"]
    assert first[:prefix_ids.shape[1]].tolist() == prefix_ids[0].tolist(), "the system prompt is not a token prefix"
    print(f"{len(steps)} train steps, prefix {prefix_ids.shape[1]} tokens, {processor.image_tokens(render_screen(steps[0].screen))} "
          f"image tokens; model {sum(p_.numel() for p_ in model.parameters()) / 1e6:.2f} M parameters")

    model.to(a.device).train()
    prefix_ids = prefix_ids.to(a.device)
    vision = {id(p_) for p_ in model.model.visual.parameters()}
    groups = []
    for is_vision, lr in ((False, a.lr), (True, a.vision_lr)):
        params = [p_ for p_ in model.parameters() if (id(p_) in vision) == is_vision]
        groups += [{"params": [p_ for p_ in params if p_.dim() >= 2], "weight_decay": 0.1, "lr": lr},
                   {"params": [p_ for p_ in params if p_.dim() < 2], "weight_decay": 0.0, "lr": lr}]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.95))
    warm = max(1, min(100, a.iters // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(i, a.iters) / a.iters))))
    order: list[int] = []
    t_train = time.perf_counter()
    bar = tqdm(range(a.iters), desc="train", mininterval=5)
    ema = None
    for it in bar:
        picked = []
        while len(picked) < a.batch:
            if not order:
                order = list(range(len(steps)))
                rng.shuffle(order)
            picked.append(order.pop())
        samples = [encode(processor, steps[i], apps[(steps[i].episode_id, steps[i].step)], prefix_ids.shape[1])
                   for i in picked]
        while len(samples) < a.batch + a.ground:
            g = grounding_step(steps[rng.randrange(len(steps))], rng)
            if g is not None:
                samples.append(encode(processor, g, [], prefix_ids.shape[1]))
        batch = {k: v.to(a.device) for k, v in collate(samples, tok.pad_token_id).items()}
        with torch.autocast(torch.device(a.device).type, dtype=torch.bfloat16):
            target_loss, lm_loss = loss_fn(model, prefix_ids, batch, model.config.image_token_id)
            loss = target_loss + a.lm_weight * lm_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tl = target_loss.detach().float()
        ema = tl if ema is None else 0.95 * ema + 0.05 * tl
        if it % 10 == 0 or it + 1 == a.iters:
            bar.set_postfix(loss=f"{ema.item():.4f}", lm=f"{lm_loss.item():.3f}")
    ema = ema.item() if ema is not None else float("nan")
    train_s = time.perf_counter() - t_train

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().cpu()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    processor.image_processor.save_pretrained(out)
    cmd = argv if argv is not None else sys.argv[1:]
    info = {"command": "python scripts/train_tiny_vl.py " + " ".join(f"'{x}'" if " " in x else x for x in cmd),
            "init": Path(a.init).resolve().relative_to(ROOT).as_posix() if Path(a.init).resolve().is_relative_to(ROOT)
            else a.init, "train_steps": len(steps), "iters": a.iters, "batch": a.batch, "ground": a.ground,
            "lr": a.lr, "vision_lr": a.vision_lr, "lm_weight": a.lm_weight, "max_image_tokens": a.max_image_tokens,
            "image_tokens": processor.image_tokens(render_screen(steps[0].screen)), "prefix_tokens": prefix_ids.shape[1],
            "seed": a.seed, "threads": a.threads, "device": a.device, "vocab": len(tok), "final_loss_ema": ema,
            "train_seconds": round(train_s), "total_seconds": round(time.perf_counter() - t0),
            "torch": torch.__version__, "machine": machine(), "parameters": sum(p_.numel() for p_ in model.parameters()),
            "vision_parameters": sum(p_.numel() for p_ in model.model.visual.parameters())}
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    if not a.no_eval:
        write_card(out)


def write_card(out: Path) -> None:
    """Measure the saved model on the eval split's screenshots and write eval.json and the card README.md."""
    from workbench.measure import evaluate  # noqa: PLC0415

    t0 = time.perf_counter()
    report = evaluate(str(out), str(EVAL))
    data = report.to_json()
    data["provenance"]["model"] = "open-autoglm-tiny-vl"
    data["wall_seconds"] = round(time.perf_counter() - t0)
    data["steps"] = [{"target": p_.target, "output": p_.output, "ok": p_.step_ok} for p_ in report.predictions]
    data["deployed"] = {}
    for name, recipe in tqdm(DEPLOYED.items(), desc="recipes on ONNX Runtime"):
        r = evaluate(str(out), str(EVAL), recipe=recipe or None, engine="ort", progress=False).to_json()
        data["deployed"][name] = {"recipe": recipe, "accuracy": r["accuracy"], "latency": r["latency"],
                                  "memory": r["memory"]}
    (out / "eval.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "README.md").write_text(render_card(out, data))
    print(json.dumps(data["accuracy"], indent=2))


INT4 = {"method": "rtn", "bits": 4, "group_size": 32}
# what the card measures on ONNX Runtime, the three graphs the export writes (float32 first: the ratios' base)
DEPLOYED = {"float32": {}, "int4 language": {"quant": INT4}, "int4 all": {"quant": {**INT4, "scope": "all"}}}


def deployed_rows(data: dict) -> str:
    """The card's table of the DEPLOYED recipes: accuracy and its cost, bytes and what they save, latency by phase."""
    rows = data["deployed"]
    base = rows["float32"]
    out = []
    for name, r in rows.items():
        acc, lat, mem = r["accuracy"], r["latency"], r["memory"]
        lo, hi = acc["step_interval"]
        kl = f"{acc['kl']:.4f}" if acc.get("kl") is not None else "-"
        out.append(f"| {name} | {acc['step']:.3f} ({lo:.3f}..{hi:.3f}) | {acc['step'] - base['accuracy']['step']:+.3f} | "
                   f"{kl} | {mem['weight_bytes'] / 2**20:.2f} | {mem['vision_weight_bytes'] / 2**20:.2f} | "
                   f"{lat['vision_ms']:.1f} | {lat['prefill_ms']:.1f} | {lat['decode_ms_per_token']:.2f} |")
    return "\n".join(out)


def by_type(data: dict) -> dict[str, list[bool]]:
    """Step results of an eval report grouped by the target's action type."""
    out: dict[str, list[bool]] = {}
    for s in data["steps"]:
        out.setdefault(action_type(s["target"]), []).append(s["ok"])
    return dict(sorted(out.items()))


def render_card(out: Path, data: dict) -> str:
    """The model card of the model in `out` from its eval report `data` (a pure function of the folder's files)."""
    info = json.loads((out / "training.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    rows = "\n".join(f"| {k} | {len(v)} | {sum(v) / len(v):.3f} |" for k, v in by_type(data).items())
    acc, lat, mem = data["accuracy"], data["latency"], data["memory"]
    step = acc["step"]
    status = ("reached" if step >= 0.70 else "NOT reached; it ships as notebook 08's default because it is above "
              "the 0.50 floor" if step >= 0.50 else "NOT reached, and below the 0.50 floor for a default")
    lo, hi = acc["step_interval"]
    m = info.get("machine") or data["provenance"]["machine"]  # runs before the key: trained where it was measured
    where = f"{m['cpu']}, {m['cpus']} cores with {', '.join(m['cpu_flags']) or 'none of ' + ', '.join(CPU_FLAGS)}"
    return CARD.format(where=where, 
        info=info, text=cfg["text_config"], vis=cfg["vision_config"], acc=acc, lat=lat, mem=mem, rows=rows,
        params=info["parameters"] / 1e6, vparams=info["vision_parameters"] / 1e6, status=f"{status} ({step:.3f})",
        lo=lo, hi=hi, minutes=info["total_seconds"] / 60, eval_s=data["wall_seconds"],
        size=(out / "model.safetensors").stat().st_size / 2**20,
        side=screen_side(out), runs=RUNS, deployed=deployed_rows(data),
        deployed_engine=data["deployed"]["int4 all"]["latency"]["engine"])


def screen_side(out: Path) -> str:
    """`W x H` px a 360 x 800 screen becomes under the folder's image processor."""
    from PIL import Image
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(out, local_files_only=True)
    _, h, w = proc(images=[Image.new("RGB", (360, 800))], return_tensors="pt")["image_grid_thw"][0].tolist()
    return f"{w * proc.patch_size} x {h * proc.patch_size}"


RUNS = """\
Step accuracy; CPU: this 2-core VM, 2 threads.
- Probe (not full length): 200 iterations of 12 agent steps + 4 grounding samples, 8 minutes (CPU): 0.588 on
  the first 160 eval steps. Every type but taps nearly right (Launch 26/29, Type 17/23, finish 28/28); taps
  18/70, with the element's x right and a typical row's y: the tower did not yet place rows, so the full run
  took more grounding samples per batch (6 instead of 4).
- Resolution probe (no training): one batch of 16, forward and backward, 4.6 s at 180 image tokens, 1.8 s at 84.
- Run 1 (full length, the committed model): 1600 iterations of 12 + 6, 81 minutes (CPU; other work on the
  machine now and then): 0.699 on the whole split (451 of 645 steps; the target needs 452), taps 0.388.
  What is left is placing the element: every other type is at 0.95-1.00, and of the tap-like misses most
  have the element's x and another row's y. Longer training or a larger image budget are the next
  runs; neither fit this session after the run.
"""

CARD = """# open-autoglm-tiny-vl

A trained stand-in for AutoGLM-Phone-9B that runs the agent's whole loop on a laptop CPU: a
`Glm4vForConditionalGeneration` (GLM-4.1V's architecture: a vision tower with 14-px patches over frame
pairs, 2-D rotary and a 2x2 patch merger; a GLM-4 decoder with sandwich norms, grouped-query attention
and M-RoPE) that reads a rendered phone **screenshot**, prompted the way Open-AutoGLM prompts (its
system prompt, the task, `{{"current_app": ...}}`, earlier answers as assistant turns), and answers
`<think></think><answer>do(...)</answer>`. Teaching and benchmarking only: it has seen generated
screens of 14 apps, never a real phone.

**Target: step accuracy >= 0.70 on the eval split's screenshots, greedy decoding: {status}.**
90% Wilson interval {lo:.3f}..{hi:.3f} ({acc[n]} steps).

| | |
|---|---|
| parameters | {params:.2f} M, of which the vision tower {vparams:.2f} M |
| text decoder | {text[num_hidden_layers]} layers, hidden {text[hidden_size]}, {text[num_attention_heads]} query / {text[num_key_value_heads]} KV heads, MLP {text[intermediate_size]}, M-RoPE sections {text[rope_parameters][mrope_section]} (GLM-4.1V's [8, 12, 12] scaled to 8 rotary pairs), tied embeddings; open-autoglm-tiny's shape and tokenizer, plus GLM-4.1V's prefix, image and answer tokens (vocabulary {text[vocab_size]}) |
| vision tower | {vis[depth]} blocks, hidden {vis[hidden_size]}, {vis[num_heads]} heads, patch {vis[patch_size]} px, temporal patch {vis[temporal_patch_size]}, merge {vis[spatial_merge_size]}x{vis[spatial_merge_size]} into {vis[out_hidden_size]}-wide tokens |
| screenshot | a 360 x 800 screen resized by GLM-4.1V's image processor to {side} px: {info[image_tokens]} image tokens (`preprocessor_config.json`, pixel budget {info[max_image_tokens]} patches of 28 x 28 per frame pair) |
| prompt | {lat[prompt_tokens]} tokens at the median step, {info[prefix_tokens]} of them the system prompt |
| weights | `model.safetensors`, float32, {size:.1f} MiB |

### Why {info[image_tokens]} image tokens
Image tokens are most of the prompt after the system prompt, and every one is a row of the vision
tower's attention and of the decoder's prefill and KV cache. On this 2-core CPU a training batch of 16
at the processor's next budget up (384: 252 x 560 px, 180 image tokens) took 4.6 s forward and
backward against 1.8 s at {info[image_tokens]} tokens, which would leave about 40% of the iterations in
the same hour. At {side} px the labels are about 7 px tall, still one word-shape per element; the
buttons, fields and list rows most steps tap are larger. The budget is a knob the workbench shows:
`image_processor_for(n)` (workbench.model.vision) writes another one.

## Training
```
{info[command]}
```
The committed weights came from this command (with `--no-eval` the run writes only the weights and
`training.json`; they were copied here), and `python scripts/train_tiny_vl.py --card-only` then measured them
and wrote `eval.json` and this card; it re-measures and rewrites both at any time. Without options the script
trains the same settings into this folder and measures them.
- Start: the text decoder is open-autoglm-tiny's (`{info[init]}`, trained by `scripts/train_tiny.py` in
  54 minutes on this CPU), the new tokens at its mean embedding; the vision tower is random.
- Data: {info[train_steps]} agent steps of the `train` seed stream (`scripts/gen_episodes.py`, disjoint
  from `eval` and `calib`), each screen drawn on the fly by `workbench.task.render` and palette-quantized
  as the shipped PNGs are, in the `open-autoglm` prompt mode.
- Every batch: {info[batch]} agent steps (loss on the answer and EOS, plus {info[lm_weight]} x the loss on the
  user turn's text) and {info[ground]} grounding samples (a screen of the stream, the goal `Tap <label>` of
  one of its clickable elements, the answer a tap at its centre: dense practice at reading and placing
  labels, which only a few tokens of an agent step teach).
- {info[iters]} iterations, AdamW (lr {info[lr]} for the decoder, {info[vision_lr]} for the vision tower,
  betas 0.9/0.95, weight decay 0.1), warm-up then cosine decay, bf16 autocast on {info[device]}, seed
  {info[seed]}; the system prompt runs once per batch and its KV cache is broadcast over the batch.
- Time: {minutes:.1f} minutes on {info[device]} ({where}), {info[threads]} threads, torch {info[torch]}; {info[train_seconds]} s of
  training, final answer loss (EMA) {info[final_loss_ema]:.4f}. From nothing, the 54 minutes of
  open-autoglm-tiny come first. `--device cuda` runs the same script on a GPU.

## Measured on `data/episodes/eval.jsonl` ({acc[n]} screenshot steps, greedy decoding)
| metric | value |
|---|---|
| step accuracy | {acc[step]:.3f} (90% interval {lo:.3f}..{hi:.3f}) |
| action-type accuracy | {acc[type]:.3f} |
| exact match | {acc[exact]:.3f} |
| parse failures | {acc[parse_failure]:.3f} |
| vision tower, one screenshot (median / p90) | {lat[vision_ms]:.1f} / {lat[vision_ms_p90]:.1f} ms |
| prefill, {lat[prompt_tokens]}-token prompt (median / p90) | {lat[prefill_ms]:.1f} / {lat[prefill_ms_p90]:.1f} ms |
| decode per token (median / p90) | {lat[decode_ms_per_token]:.2f} / {lat[decode_ms_per_token_p90]:.2f} ms ({lat[tokens_per_s]:.0f} tok/s) |
| weights as stored / of them the vision tower | {mem[weight_bytes]} / {mem[vision_weight_bytes]} bytes |
| whole eval split, greedy accuracy + latency (wall time) | {eval_s} s |

Latency: PyTorch eager, batch 1, {lat[threads]} threads, after 2 warm-ups, on a shared 2-core VM (figures
vary by up to +-50% run to run). Step accuracy by target action type:

| target type | steps | step accuracy |
|---|---|---|
{rows}

Reproduce: `workbench evaluate --model data/open-autoglm-tiny-vl --json` (the full report is in `eval.json`).

## int4 on it, measured as deployed
The whole eval split again on ONNX Runtime, on the three graphs `workbench export` writes (vision, embedding,
text; the recipe's RTN codes packed in `MatMulNBits`, e.g. `{deployed_engine}` for scope `all`). Scope
`language` quantizes the decoder's linear layers; scope `all` the vision tower's too (its patch embedding and
the merger's 2x2 convolution, and the embedding table, stay float32). KL is to the float32 model in PyTorch,
teacher-forced on the answers; latency as above. At these widths (a 128-wide tower, a 256-wide decoder) the
weights are a few MiB and sit in the CPU cache, so int4 saves bytes but not time: unpacking `MatMulNBits`
blocks costs more than reading float32 weights that are already cached, and the three graphs' prefill is
slower than PyTorch's here. The bytes are what int4 buys at this size; at GLM-4.1V-9B's the weights are
read from memory every token and the time follows the bytes (notebook 08, the shapes cell).

| recipe | step accuracy (90% interval) | change | KL | weights MiB | vision tower MiB | vision ms | prefill ms | decode ms/token |
|---|---|---|---|---|---|---|---|---|
{deployed}

Reproduce one row: `workbench evaluate --model data/open-autoglm-tiny-vl --engine ort --recipe '{{"quant": {{"method": "rtn", "bits": 4, "group_size": 32, "scope": "all"}}}}' --json`.

## Runs
At most three full-length runs; each is recorded here with its result.
{runs}"""


if __name__ == "__main__":
    main()
