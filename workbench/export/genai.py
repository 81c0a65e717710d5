"""Greedy generation with onnxruntime-genai on an export folder (it reads the folder's genai_config.json)."""
from __future__ import annotations

import os

import numpy as np

from ..model.generate import MAX_NEW_TOKENS


def genai_greedy(folder: str | os.PathLike, input_ids, max_new_tokens: int = MAX_NEW_TOKENS) -> list[int]:
    """The tokens onnxruntime-genai generates greedily after a prompt (EOS included if it emits one).

    Args:
        folder: an export folder (`model.onnx`, `genai_config.json`).
        input_ids: (1, T) prompt ids (numpy or a list of one list). Encode them with the folder's
            tokenizer.json through `tokenizers`: onnxruntime-genai's own tokenizer skips the tiny
            tokenizer's quote normalizer.
        max_new_tokens: cap on new tokens.
    Returns:
        The new token ids.
    Raises:
        ImportError: onnxruntime-genai is not installed (`pip install onnxruntime-genai`).
    """
    import onnxruntime_genai as og

    ids = np.asarray(input_ids, dtype=np.int32).reshape(1, -1)
    model = og.Model(os.fspath(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=ids.shape[1] + max_new_tokens, do_sample=False)
    gen = og.Generator(model, params)
    gen.append_tokens(ids[0])
    while not gen.is_done():
        gen.generate_next_token()
    return [int(t) for t in gen.get_sequence(0)][ids.shape[1]:]
