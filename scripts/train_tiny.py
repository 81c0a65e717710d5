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


def train_tokenizer(texts, vocab_size: int, number_tokens: bool = True) -> PreTrainedTokenizerFast:
    """Byte-level BPE; numbers 0..999 one token each (or digit by digit without `number_tokens`).

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
    if number_tokens:
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


def parse_keep(spec: str) -> dict[str, float]:
    """`"Launch=0.2,finish=0.2,Tap=0.6"` -> {type: keep probability}; types not named keep 1."""
    out = {}
    for part in filter(None, (x.strip() for x in spec.split(","))):
        name, _, value = part.partition("=")
        out[name.strip()] = float(value)
    return out


def keep_steps(steps, keep: dict[str, float], seed: int):
    """Subsample generated steps by target action type (the data mix; whole pool when `keep` is empty).

    Generating a larger pool and keeping every swipe and long press but only part of the easy steps
    (launch, finish, type: answered right ~100% of the time) shifts the training mix towards the
    steps the model gets wrong, at the same number of training sequences.
    """
    if not keep:
        return steps
    rng = random.Random(f"keep:{seed}")
    return [s for s in steps if rng.random() < keep.get(action_type(s.target), 1.0)]


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
    p.add_argument("--save-every", type=int, default=0, help="also save a checkpoint every N iterations")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu (the reference) or cuda where a GPU is lent")
    p.add_argument("--number-tokens", type=int, default=1, help="1: numbers 0..999 one token each; 0: digits")
    p.add_argument("--keep", default="",
                   help="data mix: keep probability per target action type of the generated pool, e.g. "
                        "'Launch=0.2,finish=0.2,Type=0.3,Tap=0.6' (types not named: 1; empty: keep all)")
    p.add_argument("--layers", type=int, default=MODEL_SHAPE["num_hidden_layers"], help="decoder layers")
    p.add_argument("--mlp", type=int, default=MODEL_SHAPE["intermediate_size"], help="MLP intermediate size")
    p.add_argument("--ema", type=float, default=0.0,
                   help="save an exponential moving average of the weights with this decay (0: off), started "
                        "at --ema-start of the run; the raw final weights then go to OUT-raw")
    p.add_argument("--ema-start", type=float, default=0.5, help="fraction of the iterations before the EMA starts")
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
    pool = generate("train", a.train_steps, a.seed)
    steps = keep_steps(pool, parse_keep(a.keep), a.seed)
    mix: dict[str, int] = {}
    for s in steps:
        mix[action_type(s.target)] = mix.get(action_type(s.target), 0) + 1
    texts = [render_prompt(s) + s.target for s in steps]
    tok = train_tokenizer(texts, a.vocab, bool(a.number_tokens))
    data = encode_steps(tok, steps)
    prefix_ids = torch.tensor([tok.encode(shared_prefix(), add_special_tokens=False)], device=a.device)
    lens = [len(d[0]) for d in data]
    print(f"{len(steps)} train steps (of {len(pool)} generated; {mix}), prefix {prefix_ids.shape[1]} tokens, rest mean "
          f"{sum(lens) / len(lens):.0f} max {max(lens)} tokens; data+tokenizer {time.perf_counter() - t0:.0f}s")

    cfg = Glm4Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                     bos_token_id=None, **{**MODEL_SHAPE, "num_hidden_layers": a.layers,
                                           "intermediate_size": a.mlp})
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
    avg = None  # EMA of the weights (--ema)
    ema_start = int(a.iters * a.ema_start)
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
        if a.save_every and (it + 1) % a.save_every == 0 and it + 1 < a.iters:
            Path(a.out).mkdir(parents=True, exist_ok=True)
            model.save_pretrained(a.out)  # a checkpoint to look at while training goes on
            tok.save_pretrained(a.out)
        if a.ema and it >= ema_start:
            with torch.no_grad():
                if avg is None:
                    avg = [p_.detach().clone() for p_ in model.parameters()]
                else:
                    torch._foreach_lerp_(avg, [p_.detach() for p_ in model.parameters()], 1.0 - a.ema)
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
    outs = [out]
    if avg is not None:  # raw weights to OUT-raw, the average to OUT
        raw = out.with_name(out.name + "-raw")
        raw.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(raw, safe_serialization=True)
        tok.save_pretrained(raw)
        outs.append(raw)
        with torch.no_grad():
            for p_, v in zip(model.parameters(), avg):
                p_.copy_(v.cpu())
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    cmd = argv if argv is not None else sys.argv[1:]
    info = {"command": "python scripts/train_tiny.py " + " ".join(f"'{x}'" if " " in x else x for x in cmd),
            "train_steps": len(steps), "iters": a.iters, "batch": a.batch, "lr": a.lr, "lm_weight": a.lm_weight,
            "copy_len": a.copy_len, "copy_weight": a.copy_weight, "seed": a.seed,
            "threads": a.threads, "device": a.device, "number_tokens": a.number_tokens, "vocab": len(tok), "final_loss_ema": ema, "train_seconds": round(train_s),
            "total_seconds": round(time.perf_counter() - t0), "torch": torch.__version__,
            "parameters": sum(p_.numel() for p_ in model.parameters())}
    if a.keep or a.layers != MODEL_SHAPE["num_hidden_layers"] or a.mlp != MODEL_SHAPE["intermediate_size"] or a.ema:
        info.update(generated_steps=len(pool), keep=a.keep, mix=mix, layers=a.layers, mlp=a.mlp,
                    ema=a.ema, ema_start=a.ema_start,
                    rest_tokens_mean=round(sum(lens) / len(lens), 1))
    for i, o in enumerate(outs):
        (o / "training.json").write_text(json.dumps({**info, "weights": "raw"} if i else info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    if not a.no_eval:
        for o in outs:
            write_card(o)


def write_card(out: Path) -> None:
    """Measure the saved model on the eval split and write eval.json and the model card README.md."""
    from workbench.measure import evaluate  # noqa: PLC0415

    t0 = time.perf_counter()
    report = evaluate(str(out), str(ROOT / "data" / "episodes" / "eval.jsonl"))
    eval_s = time.perf_counter() - t0
    data = report.to_json()
    data["provenance"]["model"] = "open-autoglm-tiny"
    (out / "eval.json").write_text(json.dumps(data, indent=2) + "\n")
    info = json.loads((out / "training.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    by_type: dict[str, list[bool]] = {}
    for p_ in report.predictions:
        by_type.setdefault(p_.target.split('"')[1] if p_.target.startswith("do(") else "finish", []).append(p_.step_ok)
    rows = "\n".join(f"| {k} | {len(v)} | {sum(v) / len(v):.3f} |" for k, v in sorted(by_type.items()))
    acc, lat, mem = data["accuracy"], data["latency"], data["memory"]
    card = CARD.format(
        params=info["parameters"] / 1e6, cfg=cfg, info=info, minutes=info["total_seconds"] / 60,
        acc=acc, lat=lat, mem=mem, rows=rows, eval_s=eval_s, total_min=(info["total_seconds"] + eval_s) / 60,
        status=f"{'reached' if acc['step'] >= 0.90 else 'NOT reached'} ({acc['step']:.3f})", size=(out / "model.safetensors").stat().st_size / 2**20)
    (out / "README.md").write_text(card)
    print(json.dumps(acc, indent=2))


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
(the committed weights came from this command, which also measured them and wrote this card; with the defaults,
`python scripts/train_tiny.py` does both and writes to `data/open-autoglm-tiny`.)
- Data: {info[train_steps]} agent steps generated by `scripts/gen_episodes.py` from the `train` seed
  stream (disjoint from `eval` and `calib`), rendered with `workbench.task.render_prompt`.
- {info[iters]} iterations of batch {info[batch]}, AdamW (lr {info[lr]}, betas 0.9/0.95, weight decay
  0.1), warm-up then cosine decay, bf16 autocast on {info[device]}, seed {info[seed]}. Loss:
  cross-entropy of the action tokens and EOS, plus {info[lm_weight]} x the cross-entropy of the user turn
  (screen, history, goal), plus {info[copy_weight]} x the copy loss of a batch of random
  {info[copy_len]}-token strings repeated (see below); the shared system prompt runs once per batch
  and its KV cache is broadcast over the batch.
- Two earlier attempts with the goal at the top of the user turn (one with the action loss only)
  learned the procedure (action-type accuracy 0.97-0.98) but never used the goal (step accuracy
  0.46 and 0.37): the prompt now restates the goal right before the answer ("Task: ...").
- The next attempt (1500 iterations, plain byte-level BPE) reached step accuracy 0.744 with
  action type 0.969: its errors were nearly all matching errors (the wrong list row, the wrong
  typed text, a tap where the named row was not on screen and a swipe was due). A quoted word
  was a different token from the same word in the goal (`"Leo` vs ` Leo`), so every name needed
  its own learned equivalence; the tokenizer now gives both the same tokens.
- That alone did not help (0.72 on the first 200 eval steps after 2000 iterations): the model
  still could not copy (it typed "Madrid" for "Chicago"). Copy batches were added (a random token
  string repeated, loss on the repeat: every token of the repeat is a copy), which form the copy
  mechanism in ~300 iterations (copy loss 7.4 -> 0.2); typed text went from 3/27 to 26/27 right on
  those steps.
- With digits one per token (step accuracy 0.792, trained on the 2-core CPU in 46 minutes), the
  model found the right element but copied its six coordinate digits badly: of 289 tap-like eval
  steps, 69 answers were no element's centre and 48 near the right element but outside its box
  (`Send` at [910,190] answered [910,262]). Numbers 0..999 are now one token each: the same
  recipe reached 0.839 (seed 0, the committed model until 2026-11-27), 0.850 (seed 1), 0.842
  (2500 iterations) and 0.837 (lr 0.003), each trained on an H100 in about 4 minutes (`--device
  cuda`, the same script).
  What is left is choosing the element: of that 0.839 model's 104 misses, 81 tap-like steps
  point at another element (mostly a neighbouring row of a list), 17 tap where the named row is off
  screen and a swipe is due; the model still
  needs more capacity or training than a CPU hour gives to reach 0.90.
- A training mix weighted to the hard steps (`--train-steps 110000 --keep 'Launch=0.2,finish=0.2,
  Type=0.3,Wait=0.3,Back=0.3,Home=0.3,Double Tap=0.4,Tap=0.6'`: the same 2000 x 16 sequences, every
  swipe and long press of a larger pool kept, prompts ~3% longer) made swipes right (10/19 instead
  of 2/19 in one run) and removed parse failures, yet reached only 0.856 (seed 0) and 0.840 (seed 1);
  with 6 layers and MLP 320 (the same FLOPs) 0.848 (seed 0) and 0.859 (seed 1), with lm-weight 0.5
  0.851; an EMA of the weights (decay 0.998 from mid-run) gave 0.834 and 0.859 against 0.840 and
  0.859 raw. None is clearly above the reference's seed spread (0.839-0.850), so none was
  committed: the neighbouring-row taps remain.
- An Open-AutoGLM-style think before tap-like actions was tried: the element's first name and
  centre written first, as its screen line writes them (`<think>"Leo Garcia" [495,747]</think>
  do(action="Tap", element=[495,747])`, every screen line then putting the centre right after the
  name), so that the coordinates would follow a copied name. With the training mix above and 1600
  iterations on the 2-core CPU (54 minutes) it reached step accuracy 0.733: the model wrote the
  right name but another row's centre after it (`"Mom" [495,848]` for `[495,274]`) and typed
  text from the training pool instead of the goal (Type 0.24), so the think was dropped.
- The CPU hour: on the 2-core CPU (torch 2.13.0, 2 threads) this recipe trains at about 1.9-2.0 s
  per iteration (forward 0.5 s, backward 1.25 s; the CPU flash-attention kernels are ~46% of it),
  so the 2000 iterations of the runs above take ~66 minutes, over the hour. The default is now
  1700 iterations, and the committed weights are that default trained on the 2-core CPU:
  step accuracy 0.828 (the 2000-iteration GPU run: 0.839).
- Two more recipes, each trained on the 2-core CPU within the hour, and dropped: synthetic lookup
  batches (each iteration also 8 screens of rows named by random vocabulary words and a task naming
  one row, answered with its centre, or a swipe when no row has the name: only the lookup lowers that
  loss; 1450 iterations, the budget their cost leaves) reached step accuracy 0.825, the synthetic
  lookup loss itself stalling at ~0.45 nats per answer token; eight key/value heads instead of two
  (1600 iterations, +4.5% time per iteration) reached 0.834. Of the committed model's 111 misses, 90
  are tap-like actions on the wrong element and 15 taps where the named row is off screen.
- Weighting the lookup's own tokens did not help either. The action loss with every number token
  (the coordinates the lookup decides) weighted 10x, on the hard-step training mix above (1650
  iterations, 56.4 minutes of training on the 2-core CPU) reached step accuracy 0.814 (Tap 0.703,
  exact match 0.673); fine-tuning the committed model for 150 iterations moved the tap-like and swipe
  eval steps from 0.659 to 0.675 with the plain loss and 0.688 with the weighted one. A screen line
  with the centre before the name (`TextView [495,747] "Leo Garcia"`) learned the lookup no faster
  than the current line on a small synthetic task (5-9 contact rows, a task naming one; 300
  iterations from scratch: 2% against 8% of answers right, both near chance). Half of the committed
  model's tap-like misses that name a point (45 of 89) answer no element's centre: its attention is
  spread over neighbouring rows rather than set on a wrong one.
- Time of the committed run: {minutes:.1f} minutes on {info[device]} (torch {info[torch]}), data and
  tokenizer included ({info[train_seconds]} s of training); final training loss (EMA)
  {info[final_loss_ema]:.4f}; with the eval-split measurement below ({eval_s:.0f} s), {total_min:.1f} minutes.

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
"""


if __name__ == "__main__":
    main()
