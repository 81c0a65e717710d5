"""Run an exported vision-language model (Glm4v) on ONNX Runtime: its three graphs, as onnxruntime-genai
lays VLMs out, and the M-RoPE positions the runtime computes.

    vlm = OrtVisionLanguage(folder)             # vision.onnx, embedding.onnx, text.onnx
    gen = vlm.greedy(inputs, eos_id)            # inputs: the processor's tensors (numpy or torch)

- ``vision.onnx``: ``pixel_values`` (patches, 3*2*14*14) -> ``image_features`` (image tokens, hidden), for
  the screenshot grid the folder was exported at (``image_grid_thw`` in its manifest);
- ``embedding.onnx``: ``input_ids`` (1, T), ``image_features`` -> ``inputs_embeds`` (1, T, hidden), the
  image features written where the ids are ``<|image|>`` (decode steps pass one row of zeros);
- ``text.onnx``: ``inputs_embeds``, ``attention_mask`` (1, past + T), ``position_ids`` (3, 1, T),
  ``past_key_values.{i}.key/value`` -> ``logits``, ``present.{i}.key/value``.
Positions follow GLM-4.1V's ``get_rope_index``: text tokens count up on all three axes; an image's tokens
take (t, row, column) offsets from the position it starts at, and the text after it continues at that
start + max(rows, columns); decode steps continue from the prompt's last position + 1.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..model.generate import MAX_NEW_TOKENS, Generation
from .decoder import make_session

VISION_FILE, EMBEDDING_FILE, TEXT_FILE = "vision.onnx", "embedding.onnx", "text.onnx"


def rope_index(mm_token_type_ids, image_grid_thw, merge: int = 2) -> tuple[np.ndarray, int]:
    """GLM-4.1V's 3-axis positions of a prompt (batch 1) and the offset decode positions continue from.

    Args:
        mm_token_type_ids: (1, T) 1 at image tokens, 0 elsewhere.
        image_grid_thw: (images, 3) patch grids (t, h, w), in order of appearance.
        merge: the vision tower's spatial merge size.
    Returns:
        (positions (3, 1, T) int64, delta): decode token at sequence index n has position n + delta.
    """
    kinds = np.asarray(mm_token_type_ids).reshape(-1)
    grids = iter(np.asarray(image_grid_thw).reshape(-1, 3).tolist())
    cols, pos, i = [], 0, 0
    while i < len(kinds):
        j = i
        while j < len(kinds) and kinds[j] == kinds[i]:
            j += 1
        if kinds[i] == 0:
            cols.append(np.broadcast_to(np.arange(pos, pos + j - i), (3, j - i)))
            pos += j - i
        else:
            t, h, w = next(grids)
            h, w = h // merge, w // merge
            tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
            cols.append(np.stack([tt.reshape(-1), hh.reshape(-1), ww.reshape(-1)]) + pos)
            pos += max(h, w)
        i = j
    positions = np.concatenate(cols, 1).astype(np.int64)[:, None, :]
    return positions, int(positions.max()) + 1 - len(kinds)


def _np(x) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


class OrtVisionLanguage:
    """The three graphs of an exported Glm4v folder in ONNX Runtime sessions."""

    def __init__(self, folder: str | os.PathLike, threads: int | None = None):
        folder = Path(folder)
        missing = [f for f in (VISION_FILE, EMBEDDING_FILE, TEXT_FILE) if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks {missing[0]}: not a vision-language export (workbench export of "
                                    f"a Glm4v checkpoint writes {VISION_FILE}, {EMBEDDING_FILE} and {TEXT_FILE})")
        self.vision = make_session(folder / VISION_FILE, threads)
        self.embedding = make_session(folder / EMBEDDING_FILE, threads)
        self.text = make_session(folder / TEXT_FILE, threads)
        past = [i for i in self.text.get_inputs() if i.name.startswith("past_key_values.")]
        self.num_layers = len(past) // 2
        _, self.kv_heads, _, self.head_dim = past[0].shape
        self.hidden = self.embedding.get_outputs()[0].shape[-1]
        self.patches = self.vision.get_inputs()[0].shape[0]  # the screenshot grid the vision graph is written for
        self._out = [o.name for o in self.text.get_outputs()]

    def encode(self, pixel_values) -> np.ndarray:
        """Image features (image tokens, hidden) of a screenshot's patches.

        Raises:
            ValueError: a screenshot of another grid than the vision graph's (another resolution).
        """
        pixel_values = _np(pixel_values).astype(np.float32)
        if isinstance(self.patches, int) and pixel_values.shape[0] != self.patches:
            raise ValueError(f"the screenshot has {pixel_values.shape[0]} patches but the vision graph is written for "
                             f"{self.patches} (see image_grid_thw in the folder's manifest): resize screenshots to "
                             f"the exported resolution, or export again with screenshots of this size")
        return self.vision.run(None, {"pixel_values": pixel_values})[0]

    def _text(self, embeds, positions, past, n_past):
        feed = {"inputs_embeds": embeds, "position_ids": positions,
                "attention_mask": np.ones((1, n_past + embeds.shape[1]), np.int64)}
        for i in range(self.num_layers):
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = past[2 * i], past[2 * i + 1]
        out = self.text.run(self._out, feed)
        return out[0], out[1:]

    def prefill(self, inputs, features):
        """(logits (1, T, V), present, delta) of a prompt whose screenshot is encoded as `features`."""
        ids = _np(inputs["input_ids"]).astype(np.int64)
        embeds = self.embedding.run(None, {"input_ids": ids, "image_features": features})[0]
        positions, delta = rope_index(_np(inputs["mm_token_type_ids"]), _np(inputs["image_grid_thw"]))
        empty = np.zeros((1, int(self.kv_heads), 0, int(self.head_dim)), np.float32)
        logits, present = self._text(embeds, positions, [empty] * (2 * self.num_layers), 0)
        return logits, present, delta

    def extend(self, tokens, past, n: int, delta: int):
        """(logits (1, len(tokens), V), present) of text tokens from sequence index n on."""
        embeds = self.embedding.run(None, {"input_ids": np.array([list(tokens)], np.int64),
                                           "image_features": np.zeros((1, int(self.hidden)), np.float32)})[0]
        positions = np.broadcast_to(np.arange(n, n + len(tokens)) + delta, (3, 1, len(tokens))).astype(np.int64)
        return self._text(embeds, positions, past, n)

    def decode_one(self, token: int, past, n: int, delta: int):
        """(logits (1, 1, V), present) of one token at sequence index n."""
        return self.extend([token], past, n, delta)

    def greedy(self, inputs, eos_id: int, max_new_tokens: int = MAX_NEW_TOKENS, on_prefill=None) -> Generation:
        """Greedy decoding of one step: vision, prefill and decode timed apart (as `greedy_vl` in PyTorch).

        on_prefill: optional `fn(last_logits (V,), present, n, delta)`, run untimed after prefill (e.g. to
        score a teacher-forced target from the same KV cache)."""
        t0 = time.perf_counter()
        features = self.encode(inputs["pixel_values"])
        vision_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        logits, past, delta = self.prefill(inputs, features)
        n = logits.shape[1]
        gen = Generation([], n, time.perf_counter() - t0, vision_s=vision_s, image_tokens=features.shape[0])
        if on_prefill is not None:
            on_prefill(logits[0, -1], past, n, delta)
        token = int(logits[0, -1].argmax())
        while token != eos_id and len(gen.tokens) < max_new_tokens:
            gen.tokens.append(token)
            t0 = time.perf_counter()
            logits, past = self.decode_one(token, past, n, delta)
            gen.decode_s.append(time.perf_counter() - t0)
            n += 1
            token = int(logits[0, -1].argmax())
        gen.kv_bytes = sum(p.nbytes for p in past)
        return gen
