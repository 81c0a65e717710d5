"""Batch-1 latency of prefill and of decode-one-token, each timed on its own after warm-up."""
from __future__ import annotations

import statistics
import time

import numpy as np

import torch

from ..model.generate import decode_one, prefill
from .records import LatencyRecord, Spread


@torch.no_grad()
def measure_latency(model, input_ids: torch.Tensor, *, decode_tokens: int = 16, warmup: int = 2,
                    repeats: int = 5, engine: str = "pytorch-eager", cache_factory=None) -> LatencyRecord:
    """Time prefill of a real prompt and greedy decode steps after it.

    Args:
        model: causal LM.
        input_ids: (1, T) a prompt of typical length.
        decode_tokens: decode steps timed per repeat.
        warmup: untimed repeats first.
        repeats: timed repeats; the record keeps median and p90.
        engine: what runs the model (reported).
        cache_factory: zero-argument callable giving an empty cache (default DynamicCache).
    Returns:
        LatencyRecord in milliseconds.
    """
    input_ids = input_ids.to(next(model.parameters()).device)
    sync = torch.cuda.synchronize if input_ids.is_cuda else (lambda: None)
    pre, dec = [], []
    for r in range(warmup + repeats):
        t0 = time.perf_counter()
        logits, cache = prefill(model, input_ids, cache_factory() if cache_factory else None)
        sync()
        t_pre = time.perf_counter() - t0
        steps = []
        for _ in range(decode_tokens):
            token = logits.argmax(-1, keepdim=True)  # (1, 1)
            t0 = time.perf_counter()
            logits = decode_one(model, token, cache)
            sync()
            steps.append(time.perf_counter() - t0)
        if r >= warmup:
            pre.append(t_pre * 1e3)
            dec.append(statistics.median(steps) * 1e3)
    return LatencyRecord(Spread.of(pre), Spread.of(dec), int(input_ids.shape[1]), engine,
                         torch.get_num_threads())


def measure_ort_latency(decoder, input_ids, *, decode_tokens: int = 16, warmup: int = 2,
                        repeats: int = 5, engine: str = "onnxruntime-cpu") -> LatencyRecord:
    """Batch-1 prefill and decode-one-token times on ONNX Runtime or llama.cpp (as `measure_latency` for PyTorch).

    Args:
        decoder: a workbench.ort.OrtDecoder or a workbench.llamacpp.LlamaCppDecoder (prefill, decode_one, threads).
        input_ids: (1, T) prompt of typical length.
        decode_tokens: decode steps timed per repeat (greedy, EOS ignored).
        warmup: untimed repeats first.
        repeats: timed repeats; the record keeps median and p90.
        engine: what ran it (reported).
    Returns:
        LatencyRecord in milliseconds.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    pre, dec = [], []
    for r in range(warmup + repeats):
        t0 = time.perf_counter()
        logits, past = decoder.prefill(ids)
        t_pre = time.perf_counter() - t0
        n, steps = ids.shape[1], []
        for _ in range(decode_tokens):
            token = logits[:, -1:].argmax(-1).astype(np.int64)  # (1, 1)
            t0 = time.perf_counter()
            logits, past = decoder.decode_one(token, past, n)
            steps.append(time.perf_counter() - t0)
            n += 1
        if r >= warmup:
            pre.append(t_pre * 1e3)
            dec.append(statistics.median(steps) * 1e3)
    threads = decoder.threads
    return LatencyRecord(Spread.of(pre), Spread.of(dec), int(ids.shape[1]), engine, threads)
