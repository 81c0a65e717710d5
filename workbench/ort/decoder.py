"""Run a decoder graph on ONNX Runtime: sessions (from a file or from a model in memory), prefill /
decode-one-token with the KV cache held as OrtValues, greedy decoding.

    dec = OrtDecoder("out/model.onnx")
    logits, past = dec.prefill(ids)          # ids (1, T) int64 -> logits (1, T, V) numpy
    logits, past = dec.decode_one(tok, past) # tok (1, 1) -> logits (1, 1, V); past grows by one

The past stays in ONNX Runtime's own memory between steps (`run_with_ort_values`): only the logits
are copied out. Works for the plain and the fused graph (same inputs/outputs).

The fused graph's GroupQueryAttention updates a shared past/present buffer in place (onnxruntime-genai's
`past_present_share_buffer`): the KV cache is fixed-size buffers (`SharedKV`, capacity grown by
doubling) bound as both `past_key_values.*` and `present.*` through IOBinding, so a decode step writes
one position instead of copying the whole past into a new present. `OrtDecoder` shares the buffer when
the graph has GroupQueryAttention (the plain graph concatenates: past and present are separate).
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


def make_session(path: str | os.PathLike | bytes, threads: int | None = None,
                 profile_prefix: str | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with all graph optimizations.

    Args:
        path: the .onnx file, or a serialized model (bytes).
        threads: intra-op threads (None: torch's thread count, so both runtimes use the same cores).
        profile_prefix: record ONNX Runtime's profile trace to a file starting with this (see `ort.profile`).
    Returns:
        InferenceSession.
    """
    import torch

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
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

def has_gqa(path: str | os.PathLike) -> bool:
    """Whether the decoder graph at `path` computes attention with GroupQueryAttention (the fused graph)."""
    import onnx

    proto = onnx.load(os.fspath(path), load_external_data=False)
    return any(n.op_type == "GroupQueryAttention" for n in proto.graph.node)


@dataclass
class SharedKV:
    """A fused graph's KV cache: per layer K and V buffers (B, kv_heads, capacity, head_dim) that the graph
    reads as `past_key_values.*` and writes as `present.*` in place; positions beyond the attention mask's
    length are ignored by GroupQueryAttention (it reads `seqlens_k`), so a caller may rewind freely."""

    arrays: list  # numpy float32 arrays, the memory the OrtValues below share
    values: list  # OrtValues over `arrays`

    @property
    def capacity(self) -> int:
        return self.arrays[0].shape[2]

    @classmethod
    def empty(cls, n: int, batch: int, kv_heads: int, capacity: int, head_dim: int) -> "SharedKV":
        arrays = [np.zeros((batch, kv_heads, capacity, head_dim), np.float32) for _ in range(n)]
        return cls(arrays, [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays])

    def grown(self, need: int, keep: int) -> "SharedKV":
        """This cache with room for `need` positions (capacity doubled until it fits), the first `keep` copied."""
        cap = self.capacity
        while cap < need:
            cap *= 2
        b, h, _, d = self.arrays[0].shape
        new = SharedKV.empty(len(self.arrays), b, h, cap, d)
        for a, old in zip(new.arrays, self.arrays):
            a[:, :, :keep] = old[:, :, :keep]
        return new


class OrtDecoder:
    """Prefill and decode-one-token on an exported decoder, the KV cache kept as OrtValues (see module doc)."""

    initial_capacity = 1024  # positions of a new shared KV buffer (doubled when a sequence outgrows it)

    def __init__(self, path_or_session, threads: int | None = None, share_buffer: bool | None = None):
        """Args: path_or_session: a .onnx path or an InferenceSession; threads: intra-op threads; share_buffer:
        keep the KV cache in shared past/present buffers (default: where the graph has GroupQueryAttention;
        a session passed in: False unless set)."""
        if isinstance(path_or_session, ort.InferenceSession):
            self.session = path_or_session
        else:
            self.session = make_session(path_or_session, threads)
            if share_buffer is None and not isinstance(path_or_session, bytes):
                share_buffer = has_gqa(path_or_session)
        self.share_buffer = bool(share_buffer)
        self.io = graph_io(self.session)
        self.weight_bytes: int | None = None  # what the graph stores, where known (fused_decoder sets it)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._past_names = [f"past_key_values.{i}.{kv}" for i in range(self.io.num_layers) for kv in ("key", "value")]
        self._present_names = [f"present.{i}.{kv}" for i in range(self.io.num_layers) for kv in ("key", "value")]

    @property
    def threads(self) -> int:
        """Intra-op threads of the session."""
        return self.session.get_session_options().intra_op_num_threads

    def empty_past(self, batch: int = 1, positions: int = 0):
        """An empty KV cache (what prefill passes): tensors with 0 positions, or SharedKV buffers with room for
        at least `positions`."""
        if self.share_buffer:
            cap = max(self.initial_capacity, positions + 256)  # room to decode before the first growth
            return SharedKV.empty(len(self._past_names), batch, self.io.num_kv_heads, cap, self.io.head_dim)
        z = np.zeros((batch, self.io.num_kv_heads, 0, self.io.head_dim), np.float32)
        return [ort.OrtValue.ortvalue_from_numpy(z) for _ in self._past_names]

    def run(self, input_ids: np.ndarray, past: list, past_len: int):
        """One forward: (B, T) ids after `past_len` cached positions.

        Returns:
            (logits (B, T, V) numpy float32, present: list of OrtValues (B, kv, past_len + T, hd), or the
            same SharedKV, updated in place, when the buffer is shared).
        """
        ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        b, t = ids.shape
        if self.share_buffer:
            return self._run_shared(ids, past, past_len)
        feeds = {
            "input_ids": ort.OrtValue.ortvalue_from_numpy(ids),
            "attention_mask": ort.OrtValue.ortvalue_from_numpy(np.ones((b, past_len + t), np.int64)),
            "position_ids": ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(np.broadcast_to(np.arange(past_len, past_len + t, dtype=np.int64), (b, t)))),
        }
        feeds.update(zip(self._past_names, past))
        outs = self.session.run_with_ort_values(self.output_names, feeds)
        return outs[0].numpy(), list(outs[1:])

    def _run_shared(self, ids: np.ndarray, past: SharedKV, past_len: int):
        b, t = ids.shape
        if past.capacity < past_len + t:
            past = past.grown(past_len + t, past_len)
        bind = self.session.io_binding()
        bind.bind_cpu_input("input_ids", ids)
        bind.bind_cpu_input("attention_mask", np.ones((b, past_len + t), np.int64))
        bind.bind_cpu_input("position_ids", np.ascontiguousarray(
            np.broadcast_to(np.arange(past_len, past_len + t, dtype=np.int64), (b, t))))
        bind.bind_output("logits")  # first: get_outputs() follows the binding order
        for name, present, value in zip(self._past_names, self._present_names, past.values):
            bind.bind_ortvalue_input(name, value)
            bind.bind_ortvalue_output(present, value)
        self.session.run_with_iobinding(bind)
        return bind.get_outputs()[0].numpy(), past

    def prefill(self, input_ids: np.ndarray):
        """Args: input_ids (B, T). Returns: (logits (B, T, V), present)."""
        b, t = np.shape(input_ids)
        return self.run(input_ids, self.empty_past(b, t), 0)

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
        per_position = 2 * self.io.num_layers * self.io.num_kv_heads * self.io.head_dim * 4  # float32 K and V
        return greedy_loop(self, input_ids, eos_id, max_new_tokens, on_prefill, per_position)


def greedy_loop(decoder, input_ids, eos_id: int, max_new_tokens: int, on_prefill, kv_bytes_per_position: int) -> Generation:
    """The timed greedy loop every decoder with `prefill` / `decode_one` shares (ONNX Runtime, llama.cpp).

    Args:
        decoder: has prefill(ids) -> (logits, past) and decode_one(token, past, past_len) -> (logits, past).
        input_ids: (1, T) prompt ids; eos_id; max_new_tokens; on_prefill: as `OrtDecoder.greedy`.
        kv_bytes_per_position: KV cache bytes per held position (for `Generation.kv_bytes`).
    Returns:
        Generation.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    t0 = time.perf_counter()
    logits, past = decoder.prefill(ids)
    gen = Generation([], ids.shape[1], time.perf_counter() - t0)
    n = ids.shape[1]
    if on_prefill is not None:
        on_prefill(logits[0, -1], past, n)
    token = int(logits[0, -1].argmax())
    while token != eos_id and len(gen.tokens) < max_new_tokens:
        gen.tokens.append(token)
        t0 = time.perf_counter()
        logits, past = decoder.decode_one(np.array([[token]], np.int64), past, n)
        gen.decode_s.append(time.perf_counter() - t0)
        n += 1
        token = int(logits[0, -1].argmax())
    gen.kv_bytes = kv_bytes_per_position * n
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
        decoder = OrtDecoder(make_session(proto.SerializeToString(), threads), share_buffer=True)
        decoder.weight_bytes = initializer_bytes(proto)
        return decoder
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_fused(model, path)
        del model  # a caller that passed its only reference frees the weights before ONNX Runtime loads them
        gc.collect()
        decoder = OrtDecoder(make_session(path, threads), share_buffer=True)
        decoder.weight_bytes = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        return decoder
