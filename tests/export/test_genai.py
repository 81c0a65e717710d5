"""onnxruntime-genai loads an export folder (genai_config.json) and generates the same greedy tokens."""
import pytest

from workbench.export.genai import genai_greedy
from workbench.ort import OrtDecoder, encode

pytest.importorskip("onnxruntime_genai")


def test_genai_generates_what_the_gate_checked(baseline_export, tiny, eval_steps):
    _, tok = tiny
    dec = OrtDecoder(baseline_export.path / "model.onnx")
    for step in eval_steps[:2]:
        # token ids from the HF tokenizer: onnxruntime-genai's own tokenizer skips the tiny tokenizer's
        # quote normalizer, so its encoding of a prompt differs
        ids = encode(tok, step)
        ours = dec.greedy(ids, tok.eos_token_id, 48).tokens
        got = genai_greedy(baseline_export.path, ids, 48)
        assert got[: len(ours)] == ours and len(got) in (len(ours), len(ours) + 1)  # + EOS, if kept
        assert got[len(ours):] in ([], [tok.eos_token_id])


def test_genai_on_the_fused_graph_shares_the_kv_buffer(tiny, eval_steps, tmp_path):
    """The fused folder's genai_config asks for one past/present buffer updated in place (as OrtDecoder runs it):
    onnxruntime-genai generates the tokens the gate checked."""
    import json

    from export_settings import FAST
    from workbench.export import export_onnx

    model, tok = tiny
    r = export_onnx(tmp_path / "fused", {"quant": {"method": "rtn", "bits": 4, "group_size": 32}}, model=model,
                    tokenizer=tok, graph="fused", **FAST)
    assert json.loads((r.path / "genai_config.json").read_text())["search"]["past_present_share_buffer"] is True
    dec = OrtDecoder(r.path / "model.onnx")
    assert dec.share_buffer
    for step in eval_steps[:2]:
        ids = encode(tok, step)
        ours = dec.greedy(ids, tok.eos_token_id, 48).tokens
        got = genai_greedy(r.path, ids, 48)
        assert got[: len(ours)] == ours and got[len(ours):] in ([], [tok.eos_token_id])
