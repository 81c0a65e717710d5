"""onnxruntime-genai loads an export folder (genai_config.json) and generates the same greedy tokens."""
import numpy as np
import pytest

from workbench.ort import OrtDecoder, encode

og = pytest.importorskip("onnxruntime_genai")


def genai_greedy(model, ids, max_new):
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=ids.shape[1] + max_new, do_sample=False)
    gen = og.Generator(model, params)
    gen.append_tokens(ids[0].astype(np.int32))
    while not gen.is_done():
        gen.generate_next_token()
    return [int(t) for t in gen.get_sequence(0)][ids.shape[1]:]


def test_genai_generates_what_the_gate_checked(baseline_export, tiny, eval_steps):
    _, tok = tiny
    model = og.Model(str(baseline_export.path))
    dec = OrtDecoder(baseline_export.path / "model.onnx")
    for step in eval_steps[:2]:
        # token ids from the HF tokenizer: onnxruntime-genai's own tokenizer skips the tiny tokenizer's
        # quote normalizer, so its encoding of a prompt differs
        ids = encode(tok, step)
        ours = dec.greedy(ids, tok.eos_token_id, 48).tokens
        got = genai_greedy(model, ids, 48)
        assert got[: len(ours)] == ours and len(got) in (len(ours), len(ours) + 1)  # + EOS, if kept
        assert got[len(ours):] in ([], [tok.eos_token_id])
