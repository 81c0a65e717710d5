"""Per-layer sensitivity: one record per decoder layer, KL >= 0 (0 for the identity), input model unchanged."""
import zlib

import pytest
import torch
from random_glm import VOCAB as V

from workbench.measure import LayerSensitivity, layer_groups, layer_sensitivity
from workbench.prune import MagnitudeConfig, prune_
from workbench.quant.grid import fake_quantize
from workbench.select import selected_linears


class WordTokenizer:
    """Stand-in tokenizer (no trained tokenizer needed): a word's id is its CRC32 mod the vocab."""

    eos_token_id = 1

    def encode(self, text, add_special_tokens=False):
        return [2 + zlib.crc32(w.encode()) % (V - 2) for w in text.split()]

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(f"w{i}" for i in ids)


@pytest.fixture(scope="module")
def steps(eval_steps):
    return eval_steps[:2]


def snapshot(model):
    return {n: t.clone() for n, t in model.state_dict().items()}


def magnitude50(model, names):
    prune_(model, MagnitudeConfig(0.5), filter_fn=lambda m, n: n in names)


def quantize2(model, names):
    with torch.no_grad():
        for name in names:
            w = model.get_submodule(name).weight
            w.copy_(fake_quantize(w, bits=2))


def test_groups_are_the_decoder_layers(model):
    groups = layer_groups(model)
    assert [i for i, _ in groups] == [0, 1]
    assert all(all(f"layers.{i}." in n for n in names) and len(names) == 6 for i, names in groups)
    assert sorted(n for _, names in groups for n in names) == sorted(selected_linears(model))
    assert len(layer_groups(model, group="linear")) == 12
    with pytest.raises(ValueError, match="group must be one of layer, linear"):
        layer_groups(model, group="block")


@pytest.mark.parametrize("transform", [magnitude50, quantize2], ids=lambda f: f.__name__)
def test_one_record_per_layer_with_positive_kl_and_model_unchanged(model, steps, transform):
    before = snapshot(model)
    modules = dict(model.named_modules())
    records = layer_sensitivity(model, WordTokenizer(), steps, transform, progress=False)
    assert [r.layer for r in records] == [0, 1]
    assert all(isinstance(r, LayerSensitivity) for r in records)
    assert all(0 < r.kl < 10 and 0.0 <= r.step <= 1.0 for r in records)
    assert all(len(r.names) == 6 for r in records)
    after = model.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before)  # weights unchanged
    assert all(modules[n] is m for n, m in model.named_modules())  # the original modules are back


def test_identity_transform_costs_nothing(model, steps):
    calls = []
    records = layer_sensitivity(model, WordTokenizer(), steps, lambda m, names: calls.append(names),
                                filter_fn=lambda m, n: isinstance(m, torch.nn.Linear) and "mlp" in n,
                                group="linear", progress=False)
    assert len(records) == len(calls) == 4  # gate_up_proj and down_proj of 2 layers
    assert [r.names for r in records] == [(n,) for n in calls[0] + calls[1] + calls[2] + calls[3]]
    assert all(r.kl == pytest.approx(0.0, abs=1e-6) and r.kl >= 0 for r in records)
    assert len({r.step for r in records}) == 1  # the same predictions every time


def test_a_failing_transform_leaves_the_model_intact(model, steps):
    before = snapshot(model)

    def broken(m, names):
        magnitude50(m, names)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        layer_sensitivity(model, WordTokenizer(), steps, broken, progress=False)
    after = model.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before)
