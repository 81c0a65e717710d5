"""Train open-autoglm-tiny: a small Glm4ForCausalLM and its BPE tokenizer, on generated episodes.

Seeded and reproducible on a 2-core CPU (bf16 autocast, 2 threads). The shared system prompt is
computed once per batch and its KV cache broadcast over the batch (gradients flow through it),
which cuts the cost of every sequence by the prefix length. The loss is the cross-entropy of the
action tokens plus a weighted cross-entropy of the user turn (goal, history, screen).

    python scripts/train_tiny.py --out data/open-autoglm-tiny            # the committed model
    python scripts/train_tiny.py --out /tmp/smoke --iters 3 --train-steps 200 --no-eval   # smoke test
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from gen_episodes import generate  # noqa: E402
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers import Glm4Config, Glm4ForCausalLM, PreTrainedTokenizerFast  # noqa: E402

from workbench.task import EOS, SPECIAL_TOKENS, render_prompt, shared_prefix  # noqa: E402

MODEL_SHAPE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                   head_dim=32, intermediate_size=768, partial_rotary_factor=0.5, attention_bias=True,
                   max_position_embeddings=2048, tie_word_embeddings=True, rms_norm_eps=1e-5)


def train_tokenizer(texts, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE with the numbers 0..999 one token each.

    A coordinate is then one token, copied from the screen line to the action in one step: with
    digits one per token, a first model found the right element but wrote `[910,262]` for
    `[910,190]` (117 of 289 tap-like eval steps wrong that way). Longer digit runs split into
    leading three-digit tokens (added tokens match leftmost-longest).

    A space is inserted after every double quote before tokenizing (and removed again when
    decoding), so a quoted word gets the same token as the word inside a sentence: `"Leo Garcia"`
    on the screen and `Tell Leo Garcia` in the goal both give ` Leo`, ` Garcia`. Matching the goal
    against the screen then needs no learned synonym table per name, only a copy.
    """
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Replace('"', '" ')
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Replace('" ', '"')])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken(str(i), normalized=False) for i in range(1000)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS,
                                   additional_special_tokens=list(SPECIAL_TOKENS[1:]),
                                   model_max_length=MODEL_SHAPE["max_position_embeddings"])


def encode_steps(tok, steps):
    """(rest_ids + target_ids, n_target) per step, where the prompt = shared prefix + rest."""
    prefix = shared_prefix()
    prompts = [render_prompt(s) for s in steps]
    assert all(p_.startswith(prefix) for p_ in prompts)
    rests = tok([p_[len(prefix):] for p_ in prompts], add_special_tokens=False)["input_ids"]
    targets = tok([s.target for s in steps], add_special_tokens=False)["input_ids"]
    out = []
    for rest, target in zip(rests, targets):
        target = target + [tok.eos_token_id]
        out.append((rest + target, len(target)))
    return out


def action_type(target: str) -> str:
    """`Tap`, `Swipe`, ... or `finish` for a target action text."""
    return target.split('"')[1] if target.startswith("do(") else "finish"


def batches(data, batch: int, rng: random.Random):
    """Length-bucketed batches: shuffle, sort chunks of 8 batches by length, shuffle batches."""
    idx = list(range(len(data)))
    rng.shuffle(idx)
    chunk = batch * 8
    out = []
    for i in range(0, len(idx), chunk):
        part = sorted(idx[i:i + chunk], key=lambda j: len(data[j][0]))
        out += [part[k:k + batch] for k in range(0, len(part), batch) if len(part[k:k + batch]) == batch]
    rng.shuffle(out)
    return out


def collate(data, ids, pad: int):
    """Right-padded (B, T) inputs, target labels and user-turn labels (-100 where not counted)."""
    T = max(len(data[i][0]) for i in ids)
    x = torch.full((len(ids), T), pad, dtype=torch.long)
    y = torch.full((len(ids), T), -100, dtype=torch.long)
    y_lm = torch.full((len(ids), T), -100, dtype=torch.long)
    for b, i in enumerate(ids):
        seq, n_t = data[i]
        x[b, :len(seq)] = torch.tensor(seq)
        y[b, len(seq) - n_t:len(seq)] = torch.tensor(seq[len(seq) - n_t:])
        y_lm[b, :len(seq) - n_t] = torch.tensor(seq[:len(seq) - n_t])
    return x, y, y_lm


def loss_fn(model, prefix_ids, x, y, y_lm=None):
    """Run the shared prefix once, broadcast its KV cache over the batch, then the rest.

    Returns the mean cross-entropy on the action tokens, or (that, the mean cross-entropy on the
    user-turn tokens) when `y_lm` is given: predicting the screen and history as well gives the
    small model dense practice at copying, which it needs to pick elements named in the goal.
    """
    B = x.shape[0]
    pre = model(input_ids=prefix_ids, use_cache=True)
    cache = pre.past_key_values
    for layer in cache.layers:  # (1, kv, P, d) -> (B, kv, P, d)
        layer.keys = layer.keys.expand(B, -1, -1, -1)
        layer.values = layer.values.expand(B, -1, -1, -1)
    # right padding: real tokens never attend to the pads that follow them (causal)
    logits = model(input_ids=x, past_key_values=cache, use_cache=False).logits  # (B, T, V)
    # predict token t+1 from position t; the first rest token is predicted from the prefix
    first = pre.logits[:, -1:, :].expand(B, -1, -1)
    logits = torch.cat([first, logits[:, :-1]], dim=1).float().reshape(-1, logits.shape[-1])
    ce = torch.nn.functional.cross_entropy
    if y_lm is None:
        return ce(logits, y.reshape(-1))
    return ce(logits, y.reshape(-1)), ce(logits, y_lm.reshape(-1))


def copy_loss(model, batch: int, length: int, low: int, high: int, gen: torch.Generator):
    """Cross-entropy of repeating a random token string: (B, 2L) = [s, s], loss on the repeat.

    The agent task needs in-context copying (a name from the goal matched on the screen, the text
    to type), but only a few tokens per step depend on it, so the copy mechanism (induction heads)
    forms slowly from the task alone. Random strings repeated make every token of the second half a
    copy, a dense signal that forms it early.
    """
    s = torch.randint(low, high, (batch, length), generator=gen).to(model.device)
    x = torch.cat([s, s], dim=1)  # (B, 2L)
    logits = model(input_ids=x, use_cache=False).logits[:, length - 1:-1]  # predicts x[:, L:]
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), s.reshape(-1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "data" / "open-autoglm-tiny"))
    p.add_argument("--train-steps", type=int, default=48000, help="agent steps generated for training")
    p.add_argument("--iters", type=int, default=1700, help="1700 fit the 2-core CPU hour (2000: ~66 min)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lm-weight", type=float, default=1.0, help="weight of the user-turn LM loss")
    p.add_argument("--copy-len", type=int, default=48,
                   help="length of the random string repeated in each copy batch (0: no copy batches)")
    p.add_argument("--copy-weight", type=float, default=1.0, help="weight of the copy loss")
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu (the reference) or cuda where a GPU is lent")
    p.add_argument("--no-eval", action="store_true", help="skip the eval-split measurement and model card")
    p.add_argument("--card-only", action="store_true", help="only measure --out and write its model card")
    a = p.parse_args(argv)
    if a.card_only:
        torch.set_num_threads(a.threads)
        write_card(Path(a.out))
        return

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)
    t0 = time.perf_counter()
    steps = generate("train", a.train_steps, a.seed)
    mix: dict[str, int] = {}
    for s in steps:
        mix[action_type(s.target)] = mix.get(action_type(s.target), 0) + 1
    texts = [render_prompt(s) + s.target for s in steps]
    tok = train_tokenizer(texts, a.vocab)
    data = encode_steps(tok, steps)
    prefix_ids = torch.tensor([tok.encode(shared_prefix(), add_special_tokens=False)], device=a.device)
    lens = [len(d[0]) for d in data]
    print(f"{len(steps)} train steps ({mix}), prefix {prefix_ids.shape[1]} tokens, rest mean "
          f"{sum(lens) / len(lens):.0f} max {max(lens)} tokens; data+tokenizer {time.perf_counter() - t0:.0f}s")

    cfg = Glm4Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                     bos_token_id=None, **MODEL_SHAPE)
    model = Glm4ForCausalLM(cfg).to(a.device)
    decay = [p_ for n, p_ in model.named_parameters() if p_.dim() >= 2]
    no_decay = [p_ for n, p_ in model.named_parameters() if p_.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    warm = max(1, min(100, a.iters // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(i, a.iters) / a.iters))))
    order: list = []
    copy_gen = torch.Generator().manual_seed(a.seed)
    model.train()
    t_train = time.perf_counter()
    bar = tqdm(range(a.iters), desc="train", mininterval=5)
    ema = None  # running mean of the target loss (a tensor: no host sync per iteration)
    for it in bar:
        if not order:
            order = batches(data, a.batch, rng)
        x, y, y_lm = (t.to(a.device) for t in collate(data, order.pop(), tok.pad_token_id))
        with torch.autocast(torch.device(a.device).type, dtype=torch.bfloat16):
            target_loss, lm_loss = loss_fn(model, prefix_ids, x, y, y_lm)
            loss = target_loss + a.lm_weight * lm_loss
            if a.copy_len:
                c_loss = copy_loss(model, a.batch, a.copy_len, len(SPECIAL_TOKENS), len(tok), copy_gen)
                loss = loss + a.copy_weight * c_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tl = target_loss.detach().float()
        ema = tl if ema is None else 0.95 * ema + 0.05 * tl
        if it % 10 == 0 or it + 1 == a.iters:  # reading a loss waits for the device
            bar.set_postfix(loss=f"{ema.item():.4f}", lm=f"{lm_loss.item():.3f}",
                            copy=f"{c_loss.item():.3f}" if a.copy_len else "-")
    ema = ema.item() if ema is not None else float("nan")
    train_s = time.perf_counter() - t_train

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().cpu()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    cmd = argv if argv is not None else sys.argv[1:]
    info = {"command": "python scripts/train_tiny.py " + " ".join(f"'{x}'" if " " in x else x for x in cmd),
            "train_steps": len(steps), "iters": a.iters, "batch": a.batch, "lr": a.lr, "lm_weight": a.lm_weight,
            "copy_len": a.copy_len, "copy_weight": a.copy_weight, "seed": a.seed,
            "threads": a.threads, "device": a.device, "vocab": len(tok), "final_loss_ema": ema,
            "train_seconds": round(train_s),
            "total_seconds": round(time.perf_counter() - t0), "torch": torch.__version__,
            "parameters": sum(p_.numel() for p_ in model.parameters())}
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    if not a.no_eval:
        write_card(out)


def write_card(out: Path) -> None:
    """Measure the saved model on the eval split and write eval.json and the model card README.md."""
    from workbench.measure import evaluate  # noqa: PLC0415

    t0 = time.perf_counter()
    report = evaluate(str(out), str(ROOT / "data" / "episodes" / "eval.jsonl"))
    eval_s = time.perf_counter() - t0
    data = report.to_json()
    data["provenance"]["model"] = "open-autoglm-tiny"
    (out / "eval.json").write_text(json.dumps(data, indent=2) + "\n")
    by_type: dict[str, list[bool]] = {}
    for p_ in report.predictions:
        by_type.setdefault(action_type(p_.target), []).append(p_.step_ok)
    (out / "README.md").write_text(render_card(out, data, by_type, eval_s))
    print(json.dumps(data["accuracy"], indent=2))


def render_card(out: Path, data: dict, by_type: dict[str, list[bool]], eval_s: float) -> str:
    """The model card of the model in `out` from its eval report `data` and per-type step results."""
    # keys the template uses, with the values of runs older than them; other keys are ignored
    info = {"device": "cpu", "threads": 2, "copy_len": 0, "copy_weight": 0.0,
            **json.loads((out / "training.json").read_text())}
    cfg = json.loads((out / "config.json").read_text())
    rows = "\n".join(f"| {k} | {len(v)} | {sum(v) / len(v):.3f} |" for k, v in sorted(by_type.items()))
    acc, lat, mem = data["accuracy"], data["latency"], data["memory"]
    return CARD.format(
        params=info["parameters"] / 1e6, cfg=cfg, info=info, minutes=info["total_seconds"] / 60,
        acc=acc, lat=lat, mem=mem, rows=rows, eval_s=eval_s, total_min=(info["total_seconds"] + eval_s) / 60,
        status=f"{'reached' if acc['step'] >= 0.90 else 'NOT reached'} ({acc['step']:.3f})",
        size=(out / "model.safetensors").stat().st_size / 2**20)


CARD = """# open-autoglm-tiny

The embedded default model of AutoGLM Workbench: a `Glm4ForCausalLM` (the GLM-4-0414 architecture:
sandwich norms, partial interleaved RoPE, grouped-query attention, fused gate/up MLP) at a size a
2-core CPU evaluates in seconds, trained in this repo on the workbench's phone-agent task. It is a
teaching and benchmarking stand-in for AutoGLM-Phone-9B, not a phone agent for real use: it has only
seen generated screens of 14 apps.

**Target: step accuracy >= 0.90 on the eval split, greedy decoding: {status}.**

| | |
|---|---|
| parameters | {params:.2f} M ({cfg[num_hidden_layers]} layers, hidden {cfg[hidden_size]}, {cfg[num_attention_heads]} query heads / {cfg[num_key_value_heads]} KV heads of {cfg[head_dim]}, MLP {cfg[intermediate_size]}, partial rotary {cfg[rope_parameters][partial_rotary_factor]}, tied embeddings) |
| vocabulary | {cfg[vocab_size]} (byte-level BPE trained on the training prompts plus the numbers 0..999 as one token each, so a coordinate is copied as one token; a space inserted after every `"` before tokenizing and removed when decoding, so `"Leo Garcia"` on the screen and `Tell Leo Garcia` in the goal share the tokens ` Leo`, ` Garcia`) |
| weights | `model.safetensors`, float32, {size:.1f} MiB (input and output embeddings tied: copying a token from the screen to the answer is easier when both share one table) |
| context | trained on prompts of up to about 1,300 tokens (max positions {cfg[max_position_embeddings]}) |

## Training
```
{info[command]}
```
The committed weights came from this command, which also measured them and wrote this card. With the
defaults, `python scripts/train_tiny.py` does both and writes to `data/open-autoglm-tiny`;
`python scripts/train_tiny.py --card-only` re-measures a saved model and rewrites its card.
- Data: {info[train_steps]} agent steps generated by `scripts/gen_episodes.py` from the `train` seed
  stream (disjoint from `eval` and `calib`), rendered with `workbench.task.render_prompt`.
- {info[iters]} iterations of batch {info[batch]}, AdamW (lr {info[lr]}, betas 0.9/0.95, weight decay
  0.1), warm-up then cosine decay, bf16 autocast on {info[device]}, seed {info[seed]}. Loss:
  cross-entropy of the action tokens and EOS, plus {info[lm_weight]} x the cross-entropy of the user turn
  (screen, history, goal), plus {info[copy_weight]} x the copy loss of a batch of random
  {info[copy_len]}-token strings repeated (loss on the repeat: a dense copying signal that forms the
  in-context copy the task needs early); the shared system prompt runs once per batch and its KV
  cache is broadcast over the batch.
- Time of the committed run: {minutes:.1f} minutes on {info[device]}, {info[threads]} threads (torch
  {info[torch]}), data and tokenizer included ({info[train_seconds]} s of training); final training
  loss (EMA) {info[final_loss_ema]:.4f}; with the eval-split measurement below ({eval_s:.0f} s),
  {total_min:.1f} minutes. On the 2-core CPU an iteration takes 1.9-2.0 s, so the default of 1700
  iterations is what fits the hour (2000: ~66 minutes); `--device cuda` runs the same script on a GPU.

## Measured on `data/episodes/eval.jsonl` ({acc[n]} steps, greedy decoding)
| metric | value |
|---|---|
| step accuracy | {acc[step]:.3f} |
| action-type accuracy | {acc[type]:.3f} |
| exact match | {acc[exact]:.3f} |
| parse failures | {acc[parse_failure]:.3f} |
| prefill, {lat[prompt_tokens]}-token prompt (median / p90) | {lat[prefill_ms]:.1f} / {lat[prefill_ms_p90]:.1f} ms |
| decode per token (median / p90) | {lat[decode_ms_per_token]:.2f} / {lat[decode_ms_per_token_p90]:.2f} ms ({lat[tokens_per_s]:.0f} tok/s) |
| weights as stored | {mem[weight_bytes]} bytes |
| KV cache per token / peak | {mem[kv_bytes_per_token]:.0f} bytes / {mem[kv_bytes]} bytes |
| whole eval split, accuracy + latency (wall time; ~60 s when the machine is otherwise idle) | {eval_s:.0f} s |

Latency: PyTorch eager, batch 1, {lat[threads]} threads, after 2 warm-ups; figures on a shared
2-core VM vary by up to +-50% run to run. Step accuracy by target action type:

| target type | steps | step accuracy |
|---|---|---|
{rows}

Reproduce: `workbench evaluate --json` (the full report is in `eval.json`).

## Limitations
- Generated screens of 14 apps only; not for real phones.
- The 0.90 target is not reached. What is left is choosing the element: of the committed model's 111
  misses, 90 are tap-like actions on the wrong element (mostly a neighbouring row of a list) and 15
  taps where the named row is off screen and a swipe is due; 45 of the 89 tap-like misses that name
  a point answer no element's centre (attention spread over neighbouring rows). Long presses and
  swipes are rare in the data and mostly wrong (table above).
- One seed: at 2000 iterations seeds 0 and 1 scored 0.839 and 0.850, so differences under ~0.01
  between recipes are noise.

## History
Step accuracy on the whole eval split unless noted. CPU: the 2-core CPU, 2 threads; GPU: a lent
H100/H200 (`--device cuda`). Options only these experiments used (`--keep`, `--layers`, `--mlp`,
`--ema`, `--number-tokens`, `--save-every`) are no longer in the script; its git history has them.
- Goal at the top of the user turn, two runs, one with the action loss only (CPU): 0.46 and 0.37
  (action type 0.97-0.98), the goal unused; the prompt now restates it before the answer.
- Plain byte-level BPE, 1500 iterations (CPU, 33 min): 0.744; quoted names were other tokens than
  in the goal, so the tokenizer became quote-aware.
- Quote-aware tokenizer alone, 2000 iterations (CPU): 0.72 on the first 200 eval steps; it could
  not copy, so copy batches were added (typed text 3/27 -> 26/27 right).
- One digit per token, with copy batches, 2000 iterations (CPU, 46 min): 0.792; coordinates
  miscopied, so the numbers 0..999 became one token each.
- Numbers as tokens, 2000 iterations (GPU, ~4 min each): 0.839 (seed 0, committed until
  2026-11-27), 0.850 (seed 1), 0.842 (2500 iterations), 0.837 (lr 0.003).
- Training mix weighted to the hard steps (a 110,000-step pool subsampled by action type), 2000
  iterations (GPU): 0.856 and 0.840 (seeds 0, 1); swipes 10/19 instead of 2/19 in one run.
- Same mix, 6 layers with MLP 320 (equal FLOPs; GPU): 0.848 and 0.859; with lm-weight 0.5: 0.851.
- EMA of the weights (decay 0.998 from mid-run; GPU): 0.834 and 0.859 against 0.840 and 0.859 raw.
- A think before tap-like actions naming the element and its centre, hard-step mix, 1600
  iterations (CPU, 54 min): 0.733 (right name, another row's centre; Type 0.24).
- 1700 iterations, the CPU hour (CPU, 54 min): 0.828, the committed model.
- Synthetic lookup batches (rows named by random words, answer a row's centre), 1450 iterations
  (CPU): 0.825.
- Eight KV heads instead of two, 1600 iterations (CPU): 0.834.
- Number tokens weighted 10x in the action loss, hard-step mix, 1650 iterations (CPU, 56 min): 0.814.
- Fine-tuning the committed model 150 iterations, plain / number-weighted loss (machine not
  recorded): tap-like and swipe steps 0.659 -> 0.675 / 0.688.
- Centre before the name in the screen line, on a small synthetic lookup task, 300 iterations from
  scratch (machine not recorded): 2% right against 8% for the current line, both near chance.

None of the recipes after numbers as tokens is clearly above its seed spread (0.839-0.850), so none
replaced it: the committed model is that recipe at the 1700 iterations of the CPU hour.
"""

if __name__ == "__main__":
    main()
