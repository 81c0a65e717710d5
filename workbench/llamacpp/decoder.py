"""llama.cpp (through llama-cpp-python) as a decoder with the `OrtDecoder` interface, so the parity
gate, the accuracy scorer and the latency timer run a GGUF file as they run an ONNX graph.

    from workbench.llamacpp import LlamaCppDecoder
    dec = LlamaCppDecoder("deploy/model.gguf")
    gen = dec.greedy(ids, eos_id)            # ids from the Hugging Face tokenizer

The KV cache lives in llama.cpp's context, so `past` is the number of positions it holds: `prefill`
clears it, `decode_one(token, past, n)` and `run(ids, past, n)` first drop whatever is beyond `n`
(as `Llama.eval` does), so scoring a continuation from the prompt's cache and then decoding on works
as on ONNX Runtime. The KV cache is float16, llama.cpp's default and what a user of the file runs.

A CPU build with AMX crashes on prompts of more than one token in a quantized matmul (llama.cpp
issue 20824, seen with the llama.cpp that llama-cpp-python 0.3.36 vendors): where the build reports
AMX, prompts are fed one token per micro-batch (`n_ubatch` 1), which is correct and slower at prefill.
The Makefile builds llama-cpp-python without AMX (`-mno-amx-*`).
"""
from __future__ import annotations

import os

import numpy as np

from ..model.generate import Generation

INSTALL = ("install llama-cpp-python (`make llama`, or CMAKE_ARGS=\"-DGGML_NATIVE=ON\" pip install "
           "'llama-cpp-python>=0.3.30'); it builds llama.cpp from source, ~6 minutes on 2 cores")
MAX_NEW_TOKENS = 48


class LlamaCppMissing(ImportError):
    """llama-cpp-python is not installed; the message says how to install it."""


def llama_cpp():
    """The llama_cpp module, or LlamaCppMissing naming how to install it."""
    try:
        import llama_cpp as mod
    except ImportError:
        raise LlamaCppMissing(f"llama.cpp is not installed: {INSTALL}") from None
    return mod


def system_info() -> str:
    """llama.cpp's CPU feature line (which SIMD paths its kernels use)."""
    return llama_cpp().llama_print_system_info().decode().strip()


def has_amx() -> bool:
    """Whether this llama.cpp build uses AMX (its multi-token quantized matmul crashes: see module doc)."""
    return "AMX" in system_info()


def version() -> str:
    return llama_cpp().__version__


class LlamaCppDecoder:
    """A GGUF file on llama.cpp's CPU backend, batch 1 (see module doc)."""

    def __init__(self, path, threads: int | None = None, n_ctx: int = 2048):
        """Load a GGUF file.

        Args:
            path: the .gguf file.
            threads: CPU threads (default: torch's intra-op thread count, as the other engines use).
            n_ctx: context positions the KV cache holds.
        Raises:
            LlamaCppMissing: llama-cpp-python is not installed. FileNotFoundError / ValueError: a missing
                or unreadable GGUF file (the message names it).
        """
        mod = llama_cpp()
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found; export one with `workbench export --format gguf`")
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.threads, self.path = threads, path
        self.ubatch = 1 if has_amx() else 512
        try:
            self.llm = mod.Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_ubatch=self.ubatch, n_threads=threads,
                                 n_threads_batch=threads, logits_all=True, verbose=False, seed=0)
        except ValueError as exc:
            raise ValueError(f"llama.cpp could not load {path} ({exc}); export the file again") from None
        self.vocab_size = self.llm.n_vocab()
        meta = self.llm.metadata
        arch = meta.get("general.architecture", "glm4")
        self.num_layers = int(meta.get(f"{arch}.block_count", 0))
        self.num_kv_heads = int(str(meta.get(f"{arch}.attention.head_count_kv", "0")).strip("[]").split(",")[0] or 0)
        self.head_dim = int(meta.get(f"{arch}.attention.key_length", 0))
        self.weight_bytes = os.path.getsize(path)

    def run(self, input_ids: np.ndarray, past: int, past_len: int):
        """Append `input_ids` (1, T) after the first `past_len` positions. Returns: (logits (1, T, V), positions)."""
        ids = [int(t) for t in np.asarray(input_ids).reshape(-1)]
        if np.shape(input_ids)[0] != 1:
            raise ValueError("the llama.cpp decoder runs batch 1")
        self.llm.n_tokens = past_len  # eval() drops the cache beyond n_tokens first
        self.llm.eval(ids)
        logits = np.array(self.llm.scores[past_len:past_len + len(ids)], dtype=np.float32)
        return logits[None], past_len + len(ids)

    def prefill(self, input_ids: np.ndarray):
        """Args: input_ids (1, T). Returns: (logits (1, T, V), positions)."""
        self.llm.reset()
        return self.run(input_ids, 0, 0)

    def decode_one(self, token: np.ndarray, past: int, past_len: int):
        """Args: token (1, 1); past, past_len: positions held. Returns: (logits (1, 1, V), positions)."""
        return self.run(token, past, past_len)

    def greedy(self, input_ids, eos_id: int, max_new_tokens: int = MAX_NEW_TOKENS, on_prefill=None) -> Generation:
        """Greedy decoding of one prompt, stopping at EOS (as `OrtDecoder.greedy`).

        Args:
            input_ids: (1, T) prompt ids (numpy or torch), from the model's Hugging Face tokenizer.
            eos_id: end-of-sequence id.
            max_new_tokens: cap on new tokens.
            on_prefill: optional `fn(last_logits (V,), past, past_len)` called after prefill.
        Returns:
            Generation (tokens without EOS, prefill and per-token decode seconds, KV bytes at float16).
        """
        from ..ort.decoder import greedy_loop

        per_position = 2 * self.num_layers * self.num_kv_heads * self.head_dim * 2  # float16 K and V
        return greedy_loop(self, input_ids, eos_id, max_new_tokens, on_prefill, per_position)

    def tokenize(self, text: str) -> list[int]:
        """llama.cpp's own tokenization of `text` (special tokens parsed, no BOS)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def close(self) -> None:
        self.llm.close()


__all__ = ["INSTALL", "LlamaCppDecoder", "LlamaCppMissing", "has_amx", "llama_cpp", "system_info", "version"]
