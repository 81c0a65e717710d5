"""The request stream: agent steps as prompts, arriving as a seeded Poisson process."""
from __future__ import annotations

import numpy as np

from ..task import render_prompt


def poisson_arrivals(n: int, rate: float, seed: int = 0) -> list[float]:
    """Arrival times of a Poisson stream (exponential gaps with mean 1 / rate).

    Args:
        n: number of requests.
        rate: mean arrivals per second (> 0).
        seed: seed of the stream; the same seed gives the same times.
    Returns:
        n increasing arrival times in seconds after the stream starts (the first is one gap in).
    """
    if type(n) is not int or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if not rate > 0:
        raise ValueError(f"rate must be > 0 requests per second, got {rate!r}")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    return np.cumsum(gaps).tolist()


def step_prompts(tokenizer, steps) -> list[list[int]]:
    """Prompt token ids of each agent step (the same ids as workbench.measure.accuracy.encode_prompt).

    Args:
        tokenizer: the model's tokenizer.
        steps: task Steps.
    Returns:
        One list of token ids per step.
    """
    return [tokenizer.encode(render_prompt(s), add_special_tokens=False) for s in steps]
