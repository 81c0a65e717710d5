"""Run a decoder graph on ONNX Runtime: sessions (from a file or from a model in memory), prefill /
decode-one-token with the KV cache held as OrtValues, greedy decoding.

    dec = OrtDecoder("out/model.onnx")
    logits, past = dec.prefill(ids)          # ids (1, T) int64 -> logits (1, T, V) numpy
    logits, past = dec.decode_one(tok, past) # tok (1, 1) -> logits (1, 1, V); past grows by one

The past stays in ONNX Runtime's own memory between steps (`run_with_ort_values`): only the last
position's logits are copied out. Works for the plain and the fused graph (same inputs/outputs).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from ..model.generate import MAX_NEW_TOKENS, Generation
from ..task import render_prompt
from .contract import EXTERNAL_DATA_BYTES


class GraphError(ValueError):
    """An ONNX model that is not a decoder graph of ours (the message names the fix)."""


def make_session(path: str | os.PathLike | bytes, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with all graph optimizations.

    Args:
        path: the .onnx file, or a serialized model (bytes).
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
    return ort.InferenceSession(path if isinstance(path, bytes) else os.fspath(path), opts,
                                providers=["CPUExecutionProvider"])

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
        raise GraphError(f"the ONNX model is not a decoder with KV cache: input {missing[0]!r} missing "
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
        self.weight_bytes: int | None = None  # what the graph stores, where known (fused_decoder sets it)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._past_names = [f"past_key_values.{i}.{kv}" for i in range(self.io.num_layers) for kv in ("key", "value")]

    @property
    def threads(self) -> int:
        """Intra-op threads of the session."""
        return self.session.get_session_options().intra_op_num_threads

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

    def greedy(self, input_ids, eos_id: int, max_new_tokens: int = MAX_NEW_TOKENS, on_prefill=None) -> Generation:
        """Greedy decoding of one prompt (batch 1), stopping at EOS.

        Args:
            input_ids: (1, T) prompt ids (numpy or torch).
            eos_id: end-of-sequence id.
            max_new_tokens: cap on new tokens.
            on_prefill: optional `fn(last_logits (V,), past, past_len)` called after prefill, e.g. to
                score other continuations of the same prompt from its KV cache (`run` leaves the past as is).
        Returns:
            Generation (tokens without EOS, prefill and per-token decode seconds, KV bytes).
        """
        ids = np.asarray(input_ids, dtype=np.int64)
        t0 = time.perf_counter()
        logits, past = self.prefill(ids)
        gen = Generation([], ids.shape[1], time.perf_counter() - t0)
        n = ids.shape[1]
        if on_prefill is not None:
            on_prefill(logits[0, -1], past, n)
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


def fused_decoder(model, threads: int | None = None, workdir: str | os.PathLike | None = None) -> OrtDecoder:
    """The fused graph of `model` (what `workbench export --graph fused` writes) as a ready decoder.

    Small models go to ONNX Runtime straight from memory; a model above 1 GiB is written to a
    temporary folder (`workdir`, default the system's), loaded, and the files removed.

    Args:
        model: a GLM / GLM-4 causal LM, float or with the workbench's 4- / 8-bit layers.
        threads: intra-op threads.
        workdir: where large graphs are written while they load.
    Returns:
        OrtDecoder, with `weight_bytes`: what the graph's weights store.
    Raises:
        ValueError: what the graph builder cannot write (architecture, 3- / 2-bit or bfloat16 layers).
    """
    import gc
    import tempfile

    from .graph import build_fused, export_fused, initializer_bytes, state_bytes

    if state_bytes(model) <= EXTERNAL_DATA_BYTES:
        proto, _ = build_fused(model)
        decoder = OrtDecoder(make_session(proto.SerializeToString(), threads))
        decoder.weight_bytes = initializer_bytes(proto)
        return decoder
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_fused(model, path)
        del model  # a caller that passed its only reference frees the weights before ONNX Runtime loads them
        gc.collect()
        decoder = OrtDecoder(make_session(path, threads))
        decoder.weight_bytes = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        return decoder
