"""Service times of the real model: measure real batches once and fit a small cost model to them
(`measure_service_times`, `fit_service`, `ServiceModel`), which the replay (``workbench.serve.replay``)
simulates the dynamic batcher over.

The cost model follows what the batched loop does (``workbench.serve.batch``):
- each prompt is prefilled on its own (batch 1, unpadded), costing ``f(T) = c1 * T + c2 * T^2`` for
  a prompt of T tokens (T in thousands in the coefficients; the second term is attention, quadratic
  in the prompt length), fitted on the per-request prefill times; the batch's prefill phase (all
  its prefills and the merge into one left-padded batch cache) is ``k(B) * sum_i f(T_i)``, with
  one factor k per measured batch size (the merge and whatever a larger batch does to the CPU's
  caches; ~1), interpolated linearly between sizes (extrapolated beyond the largest: an estimate);
- one decode step with b rows still active and a cache of ``ctx`` columns: ``e0 + e1 * b +
  e2 * b*ctx`` (a fixed per-call cost, per-row matmul work, attention over each row's cache);
  ``ctx`` is the longest prompt still decoding plus the step number (finished rows leave the cache,
  and padding columns no remaining row needs are cut off).
A request that generated g tokens took g decode steps after the prefill (its EOS came out of the
g-th), or g - 1 if it hit the token cap. The request mix (prompt length, generated tokens) is
recorded per step while measuring, and request i of a stream is step i modulo the step count, as in
live mode. Coefficients are fitted by least squares, non-negative.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .arrivals import step_prompts
from .batch import MAX_NEW_TOKENS, generate_batch


@dataclass(frozen=True)
class BatchSample:
    """One measured batch: size, longest prompt, prefill phase, per-step decode times (s)."""

    batch_size: int
    padded_tokens: int  # the longest prompt: width of the merged batch cache
    prompt_tokens: tuple[int, ...]
    new_tokens: tuple[int, ...]
    prefill_s: float  # every prefill + first token, and the cache merge
    decode_s: tuple[float, ...]
    active: tuple[int, ...]
    seconds: float  # the whole batch (last request's finish)
    prefill_each_s: tuple[float, ...] = ()  # per request: its own prefill (empty: not recorded)
    context: tuple[int, ...] = ()  # cache columns per decode step (empty: padded_tokens + step)


@dataclass(frozen=True)
class ServiceModel:
    """Batch service time of the real model as a small fitted cost model, plus the request mix.

    Times in seconds; lengths in tokens (see the module docstring for the formulas).
    """

    prefill_coef: tuple[float, float]  # per prompt: c1 per 1k tokens, c2 per (T/1k)^2
    prefill_scale: tuple[tuple[int, float], ...]  # (batch size, k): prefill phase / sum of single prefills
    decode_coef: tuple[float, float, float]  # e0, e1 per active row, e2 per row per 1k cache columns
    profile: tuple[tuple[int, int], ...]  # (prompt tokens, generated tokens) per step, in step order
    max_new_tokens: int = MAX_NEW_TOKENS
    threads: int = 1
    engine: str = "pytorch-eager"
    samples: tuple[BatchSample, ...] = field(default=(), compare=False, repr=False)

    def prefill_one_s(self, prompt_tokens: int) -> float:
        """Predicted prefill time of one prompt of `prompt_tokens` tokens on its own."""
        c1, c2 = self.prefill_coef
        t = prompt_tokens / 1e3
        return c1 * t + c2 * t * t

    def prefill_s(self, prompt_tokens) -> float:
        """Predicted prefill phase of one batch: each prompt on its own, then the merge.

        Args:
            prompt_tokens: prompt length of each request of the batch.
        Returns:
            Seconds, k(B) * sum of the single prefills.
        """
        return self.scale(len(prompt_tokens)) * sum(self.prefill_one_s(t) for t in prompt_tokens)

    def scale(self, batch: int) -> float:
        """Prefill factor k(batch): measured sizes exactly, linear in between, extrapolated beyond."""
        sizes = [b for b, _ in self.prefill_scale]
        ks = [k for _, k in self.prefill_scale]
        if len(sizes) == 1 or batch <= sizes[0]:
            return ks[0]
        if batch < sizes[-1]:
            return float(np.interp(batch, sizes, ks))
        slope = (ks[-1] - ks[-2]) / (sizes[-1] - sizes[-2])
        return max(ks[-1] + slope * (batch - sizes[-1]), 0.0)

    def decode_step_s(self, active: int, context: int) -> float:
        """Predicted time of one decode step with `active` rows over a cache of `context` columns."""
        e0, e1, e2 = self.decode_coef
        return e0 + e1 * active + e2 * active * context / 1e3

    def decode_steps(self, new_tokens: int) -> int:
        """Decode steps a request with `new_tokens` generated tokens takes after the prefill."""
        return new_tokens if new_tokens < self.max_new_tokens else max(new_tokens - 1, 0)

    def batch_finish_s(self, prompt_tokens, new_tokens) -> list[float]:
        """Predicted finish time of each request of one batch, from the batch's start.

        Args:
            prompt_tokens: prompt length of each request.
            new_tokens: generated tokens of each request.
        Returns:
            Seconds per request; the batch's service time is the largest.
        """
        t = self.prefill_s(prompt_tokens)
        steps = [self.decode_steps(g) for g in new_tokens]
        done_at = [t]  # done_at[k]: time when decode step k has finished
        for k in range(1, max(steps) + 1):
            live = [p for p, s in zip(prompt_tokens, steps) if s >= k]  # prompts of the rows still decoding
            t += self.decode_step_s(len(live), max(live) + k)
            done_at.append(t)
        return [done_at[s] for s in steps]

    def fit_error(self) -> float:
        """Median relative error of the predicted batch time against the measured batches."""
        errs = [abs(max(self.batch_finish_s(s.prompt_tokens, s.new_tokens)) - s.seconds) / s.seconds
                for s in self.samples]
        return statistics.median(errs) if errs else float("nan")

    def per_request_ms(self) -> dict[int, tuple[float, float]]:
        """Measured batch time per request (median, p90 in ms) per batch size."""
        by: dict[int, list[float]] = {}
        for s in self.samples:
            by.setdefault(s.batch_size, []).append(s.seconds / s.batch_size * 1e3)
        out = {}
        for b, v in sorted(by.items()):
            v = sorted(v)
            out[b] = (statistics.median(v), v[min(len(v) - 1, round(0.9 * (len(v) - 1)))])
        return out

    def per_request_split_ms(self) -> dict[int, tuple[float, float]]:
        """Measured prefill phase and decode phase per request (medians over batches, ms) per batch size."""
        by: dict[int, list[tuple[float, float]]] = {}
        for s in self.samples:
            by.setdefault(s.batch_size, []).append((s.prefill_s / s.batch_size * 1e3,
                                                    (s.seconds - s.prefill_s) / s.batch_size * 1e3))
        return {b: (statistics.median(p for p, _ in v), statistics.median(d for _, d in v))
                for b, v in sorted(by.items())}


def _fit_nonneg(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients: refit without the most negative term until none."""
    cols = list(range(features.shape[1]))
    coef = np.zeros(features.shape[1])
    while cols:
        sol = np.linalg.lstsq(features[:, cols], y, rcond=None)[0]
        if (sol >= 0).all():
            coef[cols] = sol
            break
        cols.pop(int(np.argmin(sol)))
    return coef


def fit_service(samples, profile, *, max_new_tokens: int = MAX_NEW_TOKENS, threads: int = 1,
                engine: str = "pytorch-eager") -> ServiceModel:
    """Fit the cost model to measured batches.

    Args:
        samples: BatchSamples.
        profile: (prompt tokens, generated tokens) per step.
        max_new_tokens: the token cap the batches ran with.
        threads: torch threads during the measurement (reported).
        engine: what ran the model (reported).
    Returns:
        ServiceModel.
    """
    # single prefills: f(T) = c1 * T + c2 * T^2 on every request's own prefill; a sample without
    # per-request times adds its whole prefill phase against the sums of the features
    pre_x, pre_y = [], []
    for s in samples:
        if s.prefill_each_s:
            for t, y in zip(s.prompt_tokens, s.prefill_each_s):
                pre_x.append([t / 1e3, (t / 1e3) ** 2])
                pre_y.append(y)
        else:
            pre_x.append([sum(t / 1e3 for t in s.prompt_tokens), sum((t / 1e3) ** 2 for t in s.prompt_tokens)])
            pre_y.append(s.prefill_s)
    pre = _fit_nonneg(np.array(pre_x), np.array(pre_y))  # (2,)
    # k(B): the measured prefill phases over the single prefills they hold, per batch size
    ratio: dict[int, list[float]] = {}
    for s in samples:
        single = sum(pre[0] * t / 1e3 + pre[1] * (t / 1e3) ** 2 for t in s.prompt_tokens)
        ratio.setdefault(s.batch_size, []).append((s.prefill_s, single))
    scale = tuple((b, float(sum(y for y, _ in v) / max(sum(x for _, x in v), 1e-30)))
                  for b, v in sorted(ratio.items()))
    dec_x, dec_y = [], []
    for s in samples:
        context = s.context or tuple(s.padded_tokens + k for k in range(1, len(s.decode_s) + 1))
        for b, ctx, dt in zip(s.active, context, s.decode_s):
            dec_x.append([1.0, b, b * ctx / 1e3])
            dec_y.append(dt)
    dec = _fit_nonneg(np.array(dec_x), np.array(dec_y)) if dec_x else np.zeros(3)
    return ServiceModel(tuple(map(float, pre)), scale, tuple(map(float, dec)), tuple(profile), max_new_tokens,
                        threads, engine, tuple(samples))


@torch.no_grad()
def measure_service_times(model, tokenizer, steps, batch_sizes=(1, 2, 4, 8), *, repeats: int = 1,
                          max_new_tokens: int = MAX_NEW_TOKENS, progress: bool = True,
                          on_step=None) -> ServiceModel:
    """Run real batches of agent steps through the model and fit the service-time model.

    For each batch size B (after one untimed warm-up batch), the steps are served in consecutive
    batches of B (the last one filled up from the start), `repeats` times over.

    Args:
        model: causal LM in eval mode.
        tokenizer: its tokenizer (eos_token_id ends a request).
        steps: task Steps, the request mix (request i of a stream is steps[i % len(steps)]).
        batch_sizes: batch sizes to measure.
        repeats: passes over the steps per batch size.
        max_new_tokens: cap on generated tokens per request.
        progress: show a tqdm bar over the batches.
        on_step: zero-argument callable run after each timed batch (may raise to stop the run).
    Returns:
        ServiceModel with the fitted coefficients, the request mix and the measured samples.
    """
    prompts = step_prompts(tokenizer, steps)
    n, eos = len(prompts), tokenizer.eos_token_id
    plan = [(b, [(j * b + i) % n for i in range(b)]) for b in batch_sizes
            for _ in range(repeats) for j in range(math.ceil(n / b))]
    generated: dict[int, int] = {}
    samples, warm = [], set()
    for b, idx in tqdm(plan, desc="service times", disable=not progress, mininterval=1):
        if b not in warm:
            generate_batch(model, [prompts[i] for i in idx], eos, max_new_tokens=max_new_tokens)
            warm.add(b)
        res = generate_batch(model, [prompts[i] for i in idx], eos, max_new_tokens=max_new_tokens)
        for i, toks in zip(idx, res.tokens):
            generated.setdefault(i, len(toks))
        samples.append(BatchSample(b, max(res.prompt_tokens), tuple(res.prompt_tokens),
                                   tuple(len(t) for t in res.tokens), res.prefill_s, tuple(res.decode_s),
                                   tuple(res.active), res.seconds, tuple(res.prefill_each_s),
                                   tuple(res.context)))
        if on_step is not None:
            on_step()
    profile = [(len(prompts[i]), generated[i]) for i in range(n)]
    return fit_service(samples, profile, max_new_tokens=max_new_tokens, threads=torch.get_num_threads())
