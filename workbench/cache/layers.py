"""Cache layers behind the policies: sliding window with attention sinks, and int8 KV.

Both plug into transformers' `Cache(layers=[...])`, so the model's own attention uses them. Each
layer's `update` returns the keys/values the current forward attends to (the kept past plus the
new tokens, exact) and stores the reduced form; `get_seq_length` is the absolute length (it sets
the positions of new tokens), and `get_mask_sizes` makes every kept past token visible to the new
queries while the new tokens stay causal among themselves.
"""
from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer


class SinkWindowLayer(DynamicLayer):
    """Keeps the first `sinks` tokens and the most recent `window - sinks` (StreamingLLM).

    Keys keep the rotary phase of their original positions (no re-rotation): the recent window
    keeps its true relative distances, the sinks only have to absorb attention mass.
    """

    def __init__(self, window: int, sinks: int):
        super().__init__()
        self.window, self.sinks = window, sinks
        self.cumulative_length = 0

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.cumulative_length += key_states.shape[-2]
        keys = torch.cat([self.keys, key_states], dim=-2)  # (B, kv, kept + q, d)
        values = torch.cat([self.values, value_states], dim=-2)
        if keys.shape[-2] > self.window:
            recent = self.window - self.sinks
            self.keys = torch.cat([keys[:, :, :self.sinks], keys[:, :, keys.shape[-2] - recent:]], dim=-2)
            self.values = torch.cat([values[:, :, :self.sinks], values[:, :, values.shape[-2] - recent:]], dim=-2)
        else:
            self.keys, self.values = keys, values
        return keys, values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        kept = self.keys.shape[-2] if self.is_initialized and self.keys.numel() else 0
        return kept + query_length, self.cumulative_length - kept

    def get_seq_length(self) -> int:
        return self.cumulative_length

    def get_max_length(self) -> int:
        return self.window


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one scale per (batch, head, token): x (B, H, T, d) -> (int8, scale (B, H, T, 1))."""
    scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8) / 127.0
    return torch.round(x / scale).clamp_(-127, 127).to(torch.int8), scale.to(torch.float16)


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    return q.to(dtype) * scale.to(dtype)


class Int8Layer(DynamicLayer):
    """Stores keys and values as int8 with a float16 scale per token and head.

    Per-token scales (rather than KIVI's per-channel scales for keys) keep the cache appendable
    one token at a time with no full-precision residual buffer; at 8 bits the error is below 1% of
    each token's largest channel, which the task accuracy check bounds. Bytes held per element:
    1 + 2/head_dim (vs 4 in float32).
    """

    def __init__(self):
        super().__init__()
        self.qk = self.qv = self.sk = self.sv = None
        self.cumulative_length = 0

    def update(self, key_states, value_states, *args, **kwargs):
        self.cumulative_length += key_states.shape[-2]
        qk, sk = quantize_int8(key_states)
        qv, sv = quantize_int8(value_states)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.qk, self.sk, self.qv, self.sv = qk, sk, qv, sv
            return key_states, value_states
        dtype = key_states.dtype
        keys = torch.cat([dequantize_int8(self.qk, self.sk, dtype), key_states], dim=-2)
        values = torch.cat([dequantize_int8(self.qv, self.sv, dtype), value_states], dim=-2)
        self.qk, self.sk = torch.cat([self.qk, qk], dim=-2), torch.cat([self.sk, sk], dim=-2)
        self.qv, self.sv = torch.cat([self.qv, qv], dim=-2), torch.cat([self.sv, sv], dim=-2)
        return keys, values

    def dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored keys and values, dequantized (B, kv, T, d)."""
        return dequantize_int8(self.qk, self.sk), dequantize_int8(self.qv, self.sv)

    def tensors(self):
        return (self.qk, self.sk, self.qv, self.sv) if self.is_initialized else ()

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.cumulative_length + query_length, 0

    def get_seq_length(self) -> int:
        return self.cumulative_length
