"""LlamaCppDecoder: a GGUF file on llama.cpp with the decoder interface of OrtDecoder (skipped without llama-cpp-python)."""
import sys

import numpy as np
import pytest
import torch

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make llama builds it)")

from workbench.llamacpp import LlamaCppDecoder, LlamaCppMissing, write_gguf  # noqa: E402
from workbench.ort import encode  # noqa: E402


@pytest.fixture(scope="module")
def decoder(tiny, tmp_path_factory):
    model, tok = tiny
    path = tmp_path_factory.mktemp("gguf") / "f32.gguf"
    write_gguf(model, tok, path)
    dec = LlamaCppDecoder(path)
    yield dec
    dec.close()


@pytest.fixture(scope="module")
def prompt(tiny, eval_steps):
    return encode(tiny[1], eval_steps[0])[:, :200]


@torch.no_grad()
def test_prefill_logits_match_pytorch(tiny, decoder, prompt):
    model, _ = tiny
    ref = model(input_ids=torch.from_numpy(prompt)).logits.numpy()
    got, past = decoder.prefill(prompt)
    assert got.shape == ref.shape and past == prompt.shape[1]
    assert np.abs(got - ref).max() < 0.05  # float16 KV cache, llama.cpp's default
    assert (got.argmax(-1) == ref.argmax(-1)).mean() == 1.0


def test_decode_continues_the_cache_and_run_rewinds(decoder, prompt):
    n = prompt.shape[1]
    full, _ = decoder.prefill(prompt)
    head, past = decoder.prefill(prompt[:, :n - 1])
    forced, _ = decoder.run(prompt[:, n - 1:], past, n - 1)  # scores a continuation ...
    again, _ = decoder.decode_one(prompt[:, n - 1:], past, n - 1)  # ... and the cache is as it was before it
    np.testing.assert_allclose(forced[0, -1], full[0, -1], atol=1e-3)
    np.testing.assert_allclose(again[0, -1], forced[0, -1], atol=1e-5)


@torch.no_grad()
def test_greedy_is_pytorchs(tiny, decoder, eval_steps):
    from workbench.model.generate import greedy

    model, tok = tiny
    ids = encode(tok, eval_steps[1])
    ref = greedy(model, torch.from_numpy(ids), tok.eos_token_id)
    got = decoder.greedy(ids, tok.eos_token_id)
    assert got.tokens == ref.tokens and got.prompt_tokens == ids.shape[1] and len(got.decode_s) == len(got.tokens)
    assert got.kv_bytes == 2 * 4 * 2 * 32 * 2 * (ids.shape[1] + len(got.tokens))  # layers, KV heads, head dim, f16


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.gguf not found"):
        LlamaCppDecoder(tmp_path / "nothing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ValueError, match="could not load .*bad.gguf"):
        LlamaCppDecoder(bad)


def test_missing_llama_cpp_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(LlamaCppMissing, match="make llama"):
        LlamaCppDecoder(tmp_path / "x.gguf")


@torch.no_grad()
def test_glm_runs_as_chatglm(tiny, tmp_path, eval_steps):
    """A GlmForCausalLM (GLM-Edge's architecture) on llama.cpp's chatglm: the same greedy tokens as PyTorch."""
    from random_glm import TINY_SHAPE, random_glm

    _, tok = tiny
    glm = random_glm("glm", vocab_size=len(tok), **TINY_SHAPE)
    write_gguf(glm, tok, tmp_path / "glm.gguf")
    dec = LlamaCppDecoder(tmp_path / "glm.gguf", n_ctx=128)
    ids = encode(tok, eval_steps[0])[:, :96]
    ref = glm(input_ids=torch.from_numpy(ids)).logits.numpy()
    got, _ = dec.prefill(ids)
    dec.close()
    assert np.abs(got - ref).max() < 0.05 and (got.argmax(-1) == ref.argmax(-1)).mean() == 1.0
