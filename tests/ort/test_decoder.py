"""OrtDecoder's shared past/present KV buffer (the fused graph's GroupQueryAttention updates it in place):
the same logits as separate past and present tensors, through growth and rewinds."""
import numpy as np
import pytest

from workbench.ort import OrtDecoder, make_session
from workbench.ort.decoder import SharedKV, has_gqa
from workbench.ort.graph import build_fused


@pytest.fixture(scope="module")
def decoders(model):
    proto, _ = build_fused(model)
    session = make_session(proto.SerializeToString())
    shared = OrtDecoder(session, share_buffer=True)
    shared.initial_capacity = 8  # small, so the tests grow it
    return OrtDecoder(session, share_buffer=False), shared


def test_shared_buffer_gives_the_same_logits_and_grows(decoders):
    sep, shared = decoders
    ids = np.random.default_rng(0).integers(2, 100, (1, 40)).astype(np.int64)
    la, pa = sep.prefill(ids[:, :20])
    lb, pb = shared.prefill(ids[:, :20])
    assert isinstance(pb, SharedKV) and pb.capacity >= 20
    np.testing.assert_array_equal(la, lb)
    n = 20
    for i in range(20, 40):  # past the first capacity: the buffer doubles, its positions copied
        la, pa = sep.decode_one(ids[:, i:i + 1], pa, n)
        lb, pb = shared.decode_one(ids[:, i:i + 1], pb, n)
        n += 1
        np.testing.assert_allclose(la, lb, atol=1e-6)
    assert pb.capacity >= 40


def test_scoring_a_continuation_then_decoding_rewinds(decoders):
    """What the fidelity measure does: teacher-force a target from the prompt's cache, then decode greedily from
    the same cache; positions the forced run wrote beyond the mask are ignored and overwritten."""
    sep, shared = decoders
    ids = np.random.default_rng(1).integers(2, 100, (1, 16)).astype(np.int64)
    _, pa = sep.prefill(ids[:, :10])
    _, pb = shared.prefill(ids[:, :10])
    fa, _ = sep.run(ids[:, 10:16], pa, 10)
    fb, pb = shared.run(ids[:, 10:16], pb, 10)
    np.testing.assert_allclose(fa, fb, atol=1e-6)
    token = np.array([[3]], np.int64)
    da, _ = sep.decode_one(token, pa, 10)
    db, _ = shared.decode_one(token, pb, 10)
    np.testing.assert_allclose(da, db, atol=1e-6)


def test_greedy_is_the_same(decoders):
    sep, shared = decoders
    ids = np.random.default_rng(2).integers(2, 100, (1, 12)).astype(np.int64)
    a, b = sep.greedy(ids, eos_id=1, max_new_tokens=16), shared.greedy(ids, eos_id=1, max_new_tokens=16)
    assert a.tokens == b.tokens and a.kv_bytes == b.kv_bytes


def test_a_fused_file_shares_and_a_plain_one_does_not(model, tmp_path):
    from workbench.export.wrapper import export_plain
    from workbench.ort.graph import export_fused

    export_fused(model, tmp_path / "fused.onnx")
    assert has_gqa(tmp_path / "fused.onnx") and OrtDecoder(tmp_path / "fused.onnx").share_buffer
    export_plain(model, tmp_path / "plain.onnx")
    assert not has_gqa(tmp_path / "plain.onnx") and not OrtDecoder(tmp_path / "plain.onnx").share_buffer
