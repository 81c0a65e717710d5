"""Batched greedy generation through the real model: each prompt prefilled on its own, the caches
merged into one left-padded batch cache, then decode-one-token for the whole batch, each request
stopping at its own EOS.

Why prefill one by one: the agent's prompts are long (~600-900 tokens) and of different lengths, so
a padded batched prefill is compute-bound and pays for the padding, while the few generated tokens
(~10-15 per request) are where batching saves: a decode step is dominated by per-call overhead, so B
rows cost little more than one. Each prompt's prefill is exactly the batch-1 call
(``workbench.model.generate.prefill``: no padding, no mask), so its first token is the batch-1 token.

The caches are then merged (gpt-fast style, explicit) into buffers preallocated for the whole
decode, so a decode step writes its column in place: every layer's keys and values are left-padded
with zeros along the sequence axis to the longest prompt, the attention mask is 0 on the padding,
and each row's position ids continue from its own prompt length, so a row sees what it would see
alone, up to floating-point reassociation in the batched matmuls. A row that emits EOS
(or reaches ``max_new_tokens``) is dropped from the cache, mask and positions, and cache columns
that have become padding in every remaining row are cut off, so finished requests stop costing
compute; its finish time is recorded so a server can answer it right away.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers.cache_utils import Cache, DynamicLayer

from ..model.generate import MAX_NEW_TOKENS, prefill



@dataclass
class BatchResult:
    """One batch's greedy generation: per-request tokens and finish times, per-phase wall times (s)."""

    tokens: list[list[int]]  # per request, EOS excluded
    prompt_tokens: list[int]  # per request, unpadded
    finish_s: list[float]  # per request: seconds from the batch's start until its last token was known
    prefill_s: float  # every request's prefill + first token, and the cache merge
    decode_s: list[float] = field(default_factory=list)  # per decode step, bookkeeping included
    active: list[int] = field(default_factory=list)  # rows still decoding at each decode step
    context: list[int] = field(default_factory=list)  # cache columns each decode step attends over
    prefill_each_s: list[float] = field(default_factory=list)  # per request: its own prefill + first token
    merge_s: float = 0.0  # building the left-padded batch cache from the per-request caches

    @property
    def seconds(self) -> float:
        """Service time of the whole batch (the server is busy this long)."""
        return max(self.finish_s) if self.finish_s else 0.0

    @property
    def new_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)


class BatchKVLayer(DynamicLayer):
    """One layer's keys and values for batched decode, in a buffer preallocated for the whole decode
    (gpt-fast style): a decode step writes its column in place instead of concatenating a new copy
    of the cache (which costs a fresh b * context allocation and copy per layer per step).

    Buffers (b, H_kv, W + room, D); the first `length` columns are filled, and `keys` / `values` are
    views of them (what attention reads).
    """

    def __init__(self, buf_k: torch.Tensor, buf_v: torch.Tensor, length: int):
        super().__init__()
        self.buf_k, self.buf_v = buf_k, buf_v  # (b, H_kv, W + room, D)
        self.length, self.device, self.is_initialized = length, buf_k.device, True
        self._views()

    def _views(self) -> None:
        self.keys = self.buf_k[:, :, :self.length]  # (b, H_kv, length, D)
        self.values = self.buf_v[:, :, :self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        """Write the new columns (b, H_kv, t, D) in place; return the filled keys and values."""
        t = key_states.shape[-2]
        if self.length + t > self.buf_k.shape[-2]:
            raise RuntimeError(f"BatchKVLayer is full ({self.buf_k.shape[-2]} columns)")
        self.buf_k[:, :, self.length:self.length + t] = key_states
        self.buf_v[:, :, self.length:self.length + t] = value_states
        self.length += t
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows `indices` (b' of b)."""
        self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]  # (b', H_kv, W + room, D)
        self._views()

    def drop_left(self, columns: int) -> None:
        """Cut the first `columns` positions (padding in every row left) off the cache."""
        self.buf_k, self.buf_v = self.buf_k[:, :, columns:], self.buf_v[:, :, columns:]
        self.length -= columns
        self._views()


def merge_caches(caches, lengths, room: int = 0) -> tuple[Cache, torch.Tensor]:
    """Merge batch-1 caches into one left-padded batch cache.

    Args:
        caches: B caches of batch 1, cache i holding lengths[i] positions in every layer
            (keys and values (1, H_kv, T_i, D)).
        lengths: B prompt lengths.
        room: columns preallocated (zeroed) after the prompts for decoding.
    Returns:
        (Cache of BatchKVLayers holding keys and values (B, H_kv, W, D), W = max(lengths), row i's
        T_i positions right-aligned and zeros on its left; attention mask (B, W), 1 on real positions).
    """
    n, width = len(caches), max(lengths)
    mask = torch.zeros((n, width), dtype=torch.long)  # (B, W)
    for i, t in enumerate(lengths):
        mask[i, width - t:] = 1
    layers = []
    for layer in range(len(caches[0].layers)):
        k0 = caches[0].layers[layer].keys  # (1, H_kv, T_0, D)
        shape = (n, k0.shape[1], width + room, k0.shape[3])  # (B, H_kv, W + room, D)
        bufs = [k0.new_zeros(shape), k0.new_zeros(shape)]  # keys, values
        for i, (c, t) in enumerate(zip(caches, lengths)):
            bufs[0][i, :, width - t:width] = c.layers[layer].keys[0]  # (H_kv, T_i, D)
            bufs[1][i, :, width - t:width] = c.layers[layer].values[0]
        layers.append(BatchKVLayer(*bufs, width))
    return Cache(layers=layers), mask


@torch.no_grad()
def generate_batch(model, prompts, eos_id: int, *, max_new_tokens: int = MAX_NEW_TOKENS) -> BatchResult:
    """Greedy-decode a batch of prompts together, each stopping at its own EOS.

    Args:
        model: causal LM (prefilled as batch 1 by ``workbench.model.generate.prefill``, then decoded
            with input_ids, attention_mask, position_ids, cache, use_cache).
        prompts: B prompts (token lists or (1, T_i) tensors), any lengths.
        eos_id: end-of-sequence token id (ends a request; not included in its tokens).
        max_new_tokens: cap on generated tokens per request.
    Returns:
        BatchResult with per-request tokens and finish times, prefill times and per-step decode times.
    """
    t0 = time.perf_counter()
    seqs = [torch.as_tensor(p, dtype=torch.long).reshape(1, -1) for p in prompts]  # B x (1, T_i)
    if not seqs or any(s.shape[1] == 0 for s in seqs):
        raise ValueError("generate_batch needs at least one prompt and no empty prompts")
    n, lengths = len(seqs), [s.shape[1] for s in seqs]
    res = BatchResult([[] for _ in range(n)], lengths, [0.0] * n, 0.0)
    caches, first = [], []
    for s in seqs:  # prefill on its own: the batch-1 call, no padding
        t = time.perf_counter()
        logits, c = prefill(model, s)  # logits (1, V); c: keys, values (1, H_kv, T_i, D) per layer
        first.append(logits.argmax(-1))  # (1,)
        caches.append(c)
        res.prefill_each_s.append(time.perf_counter() - t)
    t = time.perf_counter()
    cache, mask = merge_caches(caches, lengths, room=max_new_tokens)  # keys, values (B, H_kv, W, D); mask (B, W)
    del caches
    res.merge_s = time.perf_counter() - t
    nxt = torch.cat(first)  # (B,) each row's next token
    pos = torch.tensor(lengths)  # (B,) position of each row's next token: its own prompt length
    rows = list(range(n))  # request index of each row still in the batch
    prev = None
    while True:  # each pass: read the step's tokens, retire finished rows, decode one token
        now = time.perf_counter() - t0
        if prev is None:
            res.prefill_s = now
        else:  # a decode step's time includes its bookkeeping, as the server sees it
            res.decode_s.append(now - prev)
        prev = now
        keep = []
        for j, r in enumerate(rows):
            token = int(nxt[j])
            if token == eos_id:
                res.finish_s[r] = now
                continue
            res.tokens[r].append(token)
            if len(res.tokens[r]) >= max_new_tokens:
                res.finish_s[r] = now
                continue
            keep.append(j)
        if not keep:
            return res
        if len(keep) < len(rows):  # finished rows leave the batch: cache, mask, positions shrink
            idx = torch.tensor(keep)
            cache.batch_select_indices(idx)
            mask, pos, nxt = mask[idx], pos[idx], nxt[idx]  # (b, W'), (b,), (b,)
            rows = [rows[j] for j in keep]
            pad = int(mask.any(0).int().argmax())  # leading columns that are padding in every row left
            if pad:
                for layer in cache.layers:
                    layer.drop_left(pad)
                mask = mask[:, pad:]
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)  # (b, W' + 1)
        logits = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos[:, None],
                       cache=cache, use_cache=True).logits[:, -1, :]  # (b, V)
        nxt = logits.argmax(-1)  # (b,)
        pos = pos + 1  # (b,)
        res.active.append(len(rows))
        res.context.append(mask.shape[1])
