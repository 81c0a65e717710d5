"""Measurement records: plain dataclasses that every measurement returns (never only prints)."""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field


def wilson_interval(successes: int, n: int, confidence: float = 0.90) -> tuple[float, float]:
    """The Wilson score interval for a success rate measured as `successes` of `n`.

    Args:
        successes: how many of the n trials succeeded (0..n).
        n: how many trials; 0 gives the uninformative (0.0, 1.0).
        confidence: the interval's coverage, in (0, 1).
    Returns:
        (low, high), both in [0, 1]; low is exactly 0 at 0 successes and high exactly 1 at n.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in 0..n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    rate, z2 = successes / n, z * z
    denom = 1 + z2 / n
    centre = (rate + z2 / (2 * n)) / denom
    half = z / denom * (rate * (1 - rate) / n + z2 / (4 * n * n)) ** 0.5
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of repeated timings (after warm-up), and how many repeats."""

    median: float
    p90: float
    n: int

    @classmethod
    def of(cls, values) -> "Spread":
        values = sorted(values)
        if not values:
            raise ValueError("no values to summarise")
        p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
        return cls(statistics.median(values), p90, len(values))


@dataclass(frozen=True)
class AccuracyRecord:
    """Task metrics on n steps (fractions in 0..1); kl and ppl against a reference when given."""

    n: int
    step: float
    type: float
    exact: float
    parse_failure: float
    kl: float | None = None
    ppl: float | None = None


@dataclass(frozen=True)
class LatencyRecord:
    """Batch-1 latency in milliseconds, measured by `engine` at a real prompt length."""

    prefill_ms: Spread
    decode_ms_per_token: Spread
    prompt_tokens: int
    engine: str
    threads: int
    vision_ms: Spread | None = None  # a vision-language model: encoding the screenshot, before prefill

    @property
    def tokens_per_s(self) -> float:
        return 1000.0 / self.decode_ms_per_token.median


@dataclass(frozen=True)
class MemoryRecord:
    """Bytes: weights as stored, peak KV cache held, KV per token, peak resident set of the process."""

    weight_bytes: int
    kv_bytes: int
    kv_bytes_per_token: float
    peak_rss_bytes: int
    vision_weight_bytes: int | None = None  # a vision-language model: the vision tower's part of weight_bytes
    image_tokens: int | None = None  # ... and the image tokens of the typical step (their KV is in kv_bytes)


@dataclass
class Measured:
    """What one engine measured of a recipe's model (what `PointMeter` turns into a Point)."""

    accuracy: AccuracyRecord
    predictions: list
    kv_bytes: int
    kv_bytes_per_token: float
    kl: float | None
    ppl: float | None
    latency: LatencyRecord
    weight_bytes: int
    engine: str
    cache: dict | None = None
    vision: dict = field(default_factory=dict)  # Point's vision fields, for a vision-language model


@dataclass(frozen=True)
class Prediction:
    """One step's model output next to its target."""

    episode_id: str
    step: int
    output: str
    target: str
    parsed: bool
    type_ok: bool
    step_ok: bool
    exact: bool


@dataclass(frozen=True)
class Report:
    """The `workbench evaluate` report (docs/design.md section 5 names)."""

    accuracy: AccuracyRecord
    latency: LatencyRecord
    memory: MemoryRecord
    provenance: dict
    predictions: list[Prediction] = field(default_factory=list, compare=False, repr=False)
    cache: dict | None = None  # with a recipe's cache section: policy, prefix reuse, times
    serving: dict | None = None  # with a recipe's batching section: latency percentiles, throughput
    target: dict | None = None  # with a target: latency and memory at that deployment shape

    def to_json(self) -> dict:
        """The JSON object `workbench evaluate --json` prints."""
        acc = {k: v for k, v in asdict(self.accuracy).items() if v is not None}
        acc["step_interval"] = list(wilson_interval(round(self.accuracy.step * self.accuracy.n), self.accuracy.n))
        lat = self.latency
        return {
            "accuracy": acc,
            "latency": {
                "prefill_ms": lat.prefill_ms.median, "prefill_ms_p90": lat.prefill_ms.p90,
                "decode_ms_per_token": lat.decode_ms_per_token.median,
                "decode_ms_per_token_p90": lat.decode_ms_per_token.p90,
                "tokens_per_s": lat.tokens_per_s, "prompt_tokens": lat.prompt_tokens,
                "repeats": lat.prefill_ms.n, "engine": lat.engine, "threads": lat.threads,
                **({"vision_ms": lat.vision_ms.median, "vision_ms_p90": lat.vision_ms.p90}
                   if lat.vision_ms is not None else {}),
            },
            "memory": {k: v for k, v in asdict(self.memory).items() if v is not None},
            **({"cache": self.cache} if self.cache is not None else {}),
            **({"serving": self.serving} if self.serving is not None else {}),
            **({"target": self.target} if self.target is not None else {}),
            "provenance": self.provenance,
        }
