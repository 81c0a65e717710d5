"""The batching knob's config: batching window, largest batch, and the request arrival rate.

The recipe's ``batching`` section, ``{"window_ms": 5, "max_batch": 8, "arrival_rate": 20}``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

MAX_BATCH_LIMIT = 64


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching (Triton's rule): after the first queued request arrives, wait at most
    `window_ms` for more, closing early once `max_batch` are queued; requests arrive as a Poisson
    stream at `arrival_rate` per second."""

    window_ms: float = 5.0
    max_batch: int = 8
    arrival_rate: float = 20.0

    def __post_init__(self):
        if not _number(self.window_ms) or not 0 <= self.window_ms < float("inf"):
            raise ValueError(f"batching.window_ms must be a finite number >= 0 (milliseconds), "
                             f"got {self.window_ms!r}")
        if type(self.max_batch) is not int or not 1 <= self.max_batch <= MAX_BATCH_LIMIT:
            raise ValueError(f"batching.max_batch must be an integer in 1..{MAX_BATCH_LIMIT}, "
                             f"got {self.max_batch!r}")
        if not _number(self.arrival_rate) or not 0 < self.arrival_rate < float("inf"):
            raise ValueError(f"batching.arrival_rate must be a finite number > 0 (requests per second), "
                             f"got {self.arrival_rate!r}")

    @property
    def timed_batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes whose service times are measured to replay this setting: 1, the powers of two up
        to max_batch, and max_batch."""
        return tuple(sorted({1, *(b for b in (2, 4, 8, 16, 32, 64) if b <= self.max_batch), self.max_batch}))

    def to_json(self) -> dict:
        """The recipe's ``batching`` section."""
        return asdict(self)
