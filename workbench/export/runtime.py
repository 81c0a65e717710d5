"""Run an exported decoder on ONNX Runtime: sessions, prefill / decode-one-token with the KV cache
held as OrtValues, greedy actions, task accuracy and latency records.

    dec = OrtDecoder("out/model.onnx")
    logits, past = dec.prefill(ids)          # ids (1, T) int64 -> logits (1, T, V) numpy
    logits, past = dec.decode_one(tok, past) # tok (1, 1) -> logits (1, 1, V); past grows by one

The past stays in ONNX Runtime's own memory between steps (`run_with_ort_values`): only the last
position's logits are copied out. Works for the plain and the fused graph (same inputs/outputs).
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from ..measure.accuracy import MAX_NEW_TOKENS, run_task
from ..measure.records import LatencyRecord, Spread
from ..model.generate import Generation
from ..task import render_prompt
from .folder import ExportError

def make_session(path: str | os.PathLike, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with all graph optimizations.

    Args:
        path: the .onnx file.
        threads: intra-op threads (None: torch's thread count, so both runtimes use the same cores).
    Returns:
        InferenceSession.
    """
    import torch

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])

@dataclass(frozen=True)
class GraphIO:
    """What the decoder graph expects: layers, KV heads and head dim (read from its past inputs)."""

    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int

def graph_io(session: ort.InferenceSession) -> GraphIO:
    """Args: session: a decoder session. Returns: GraphIO. Raises: ValueError if inputs are not a decoder's."""
    names = {i.name: i for i in session.get_inputs()}
    missing = [n for n in ("input_ids", "attention_mask", "position_ids", "past_key_values.0.key") if n not in names]
    if missing:
        raise ExportError(f"the ONNX model is not a decoder with KV cache: input {missing[0]!r} missing "
                         f"(inputs: {', '.join(list(names)[:6])}...); export it with workbench export")
    layers = sum(1 for n in names if n.startswith("past_key_values.") and n.endswith(".key"))
    _, kv_heads, _, head_dim = names["past_key_values.0.key"].shape
    vocab = session.get_outputs()[0].shape[-1]
    return GraphIO(layers, int(kv_heads), int(head_dim), int(vocab) if isinstance(vocab, int) else -1)

class OrtDecoder:
    """Prefill and decode-one-token on an exported decoder, the KV cache kept as OrtValues."""

    def __init__(self, path_or_session, threads: int | None = None):
        """Args: path_or_session: a .onnx path or an InferenceSession; threads: intra-op threads."""
        self.session = (path_or_session if isinstance(path_or_session, ort.InferenceSession)
                        else make_session(path_or_session, threads))
        self.io = graph_io(self.session)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._past_names = [f"past_key_values.{i}.{kv}" for i in range(self.io.num_layers) for kv in ("key", "value")]

    def empty_past(self, batch: int = 1) -> list:
        """Past tensors with 0 positions (what prefill passes)."""
        z = np.zeros((batch, self.io.num_kv_heads, 0, self.io.head_dim), np.float32)
        return [ort.OrtValue.ortvalue_from_numpy(z) for _ in self._past_names]

    def run(self, input_ids: np.ndarray, past: list, past_len: int):
        """One forward: (B, T) ids after `past_len` cached positions.

        Returns:
            (logits (B, T, V) numpy float32, present: list of OrtValues (B, kv, past_len + T, hd)).
        """
        ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        b, t = ids.shape
        feeds = {
            "input_ids": ort.OrtValue.ortvalue_from_numpy(ids),
            "attention_mask": ort.OrtValue.ortvalue_from_numpy(np.ones((b, past_len + t), np.int64)),
            "position_ids": ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(np.broadcast_to(np.arange(past_len, past_len + t, dtype=np.int64), (b, t)))),
        }
        feeds.update(zip(self._past_names, past))
        outs = self.session.run_with_ort_values(self.output_names, feeds)
        return outs[0].numpy(), list(outs[1:])

    def prefill(self, input_ids: np.ndarray):
        """Args: input_ids (B, T). Returns: (logits (B, T, V), present)."""
        return self.run(input_ids, self.empty_past(np.shape(input_ids)[0]), 0)

    def decode_one(self, token: np.ndarray, past: list, past_len: int):
        """Args: token (B, 1); past from the previous call; past_len its positions. Returns: (logits (B, 1, V), present)."""
        return self.run(token, past, past_len)

    def greedy(self, input_ids, eos_id: int, max_new_tokens: int = MAX_NEW_TOKENS) -> Generation:
        """Greedy decoding of one prompt (batch 1), stopping at EOS.

        Args:
            input_ids: (1, T) prompt ids (numpy or torch).
            eos_id: end-of-sequence id.
            max_new_tokens: cap on new tokens.
        Returns:
            Generation (tokens without EOS, prefill and per-token decode seconds, KV bytes).
        """
        ids = np.asarray(input_ids, dtype=np.int64)
        t0 = time.perf_counter()
        logits, past = self.prefill(ids)
        gen = Generation([], ids.shape[1], time.perf_counter() - t0)
        n = ids.shape[1]
        token = int(logits[0, -1].argmax())
        while token != eos_id and len(gen.tokens) < max_new_tokens:
            gen.tokens.append(token)
            t0 = time.perf_counter()
            logits, past = self.decode_one(np.array([[token]], np.int64), past, n)
            gen.decode_s.append(time.perf_counter() - t0)
            n += 1
            token = int(logits[0, -1].argmax())
        gen.kv_bytes = 2 * self.io.num_layers * self.io.num_kv_heads * self.io.head_dim * 4 * n
        return gen

def encode(tokenizer, step) -> np.ndarray:
    """(1, T) int64 prompt ids of a step (as workbench.measure.accuracy.encode_prompt, in numpy)."""
    return np.array([tokenizer.encode(render_prompt(step), add_special_tokens=False)], np.int64)

def run_task_ort(decoder: OrtDecoder, tokenizer, steps, *, progress: bool = True,
                 max_new_tokens: int = MAX_NEW_TOKENS):
    """Greedy actions on ONNX Runtime for every step, scored by the task rules.

    Args:
        decoder: the OrtDecoder.
        tokenizer: the model's tokenizer (eos_token_id ends an action).
        steps: task Steps.
        progress: show a tqdm bar.
        max_new_tokens: cap per action.
    Returns:
        (AccuracyRecord, list of Prediction, list of generated token lists).
    """
    eos, gens = tokenizer.eos_token_id, []
    rec, preds, _, _ = run_task(None, tokenizer, steps, progress=progress, generations=gens,
                                generate_fn=lambda ids: decoder.greedy(ids.numpy(), eos, max_new_tokens))
    return rec, preds, [g.tokens for g in gens]

def measure_ort_latency(decoder: OrtDecoder, input_ids, *, decode_tokens: int = 16, warmup: int = 2,
                        repeats: int = 5, engine: str = "onnxruntime-cpu") -> LatencyRecord:
    """Batch-1 prefill and decode-one-token times on ONNX Runtime (as `measure_latency` for PyTorch).

    Args:
        decoder: the OrtDecoder.
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
    threads = decoder.session.get_session_options().intra_op_num_threads
    return LatencyRecord(Spread.of(pre), Spread.of(dec), int(ids.shape[1]), engine, threads)

def check_model_file(path: str | os.PathLike) -> None:
    """Refuse a missing or corrupt model.onnx with a message naming the fix.

    Args:
        path: the .onnx path.
    Raises:
        ExportError: missing, unreadable or failing onnx.checker.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ExportError(f"{path} not found; export the model with `workbench export --recipe FILE --out DIR`")
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as exc:  # DecodeError, ValidationError, OSError: all mean "not a usable model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{path} is corrupt or not an ONNX model ({type(exc).__name__}: {first[:200]}); "
                         "export the folder again") from None
