"""Tests for workbench.calib: calibration batches, accumulators, inverse Cholesky, sequential calibration."""
from __future__ import annotations

import pytest
import torch

from workbench.calib import (Hessian, InputNorm, calibration_batches, decoder_layers, inverse_cholesky,
                             sequential)
from workbench.select import default_filter, selected_linears
from workbench.task import DEFAULT_CALIB, render_prompt
from random_glm import one_thread, random_glm, tiny_glm4  # noqa: F401  (one_thread: autouse fixture)


class Recorder:
    """Accumulator that keeps every input batch, for comparison with the real accumulators."""

    def __init__(self):
        self.inputs = []

    def add_batch(self, inp, out):
        self.inputs.append(inp.reshape(-1, inp.shape[-1]).clone())  # (tokens, in)


def direct_inputs(model, calib):
    """Inputs of every selected Linear in plain full-model forwards: name -> (all tokens, in)."""
    got, handles = {}, []
    for name, m in selected_linears(model).items():
        handles.append(m.register_forward_hook(
            lambda mod, inp, out, n=name: got.setdefault(n, []).append(inp[0].reshape(-1, inp[0].shape[-1]))))
    try:
        with torch.no_grad():
            for ids in calib:
                model(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(xs) for n, xs in got.items()}


class CharTokenizer:
    def encode(self, text, add_special_tokens=True):
        return [ord(c) % 97 + 3 for c in text]


def test_calibration_batches_are_prompt_plus_target(calib_steps):
    steps = calib_steps[:3]
    tok = CharTokenizer()
    got = calibration_batches(tok, steps)
    assert len(got) == 3
    for ids, step in zip(got, steps):
        assert ids.dtype == torch.long and ids.shape[0] == 1
        assert ids[0].tolist() == tok.encode(render_prompt(step) + step.target)
    short = calibration_batches(tok, DEFAULT_CALIB, n=2, max_len=50)  # a path works too
    assert [b.shape for b in short] == [torch.Size([1, 50])] * 2
    assert torch.equal(short[0], got[0][:, :50])


def test_accumulators_match_direct_computation():
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(1, t, 24, generator=g) * torch.linspace(0.1, 3, 24) for t in (5, 11, 1, 30)]
    norm, hess = InputNorm(24), Hessian(24, dtype=torch.float64)
    for x in xs:
        norm.add_batch(x, None)
        hess.add_batch(x, None)
    X = torch.cat([x.reshape(-1, 24) for x in xs]).double()  # (47, 24)
    assert norm.tokens == hess.tokens == 47
    torch.testing.assert_close(norm.norm(), X.norm(dim=0).float())
    torch.testing.assert_close(hess.H, 2 / 47 * X.T @ X)


def test_inverse_cholesky_is_factor_of_damped_inverse_and_handles_dead_inputs():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 16, generator=g, dtype=torch.float64)
    X[:, 5] = 0  # a dead input channel
    H = 2 / 200 * X.T @ X
    U, dead = inverse_cholesky(H, damp=0.01)
    assert dead.tolist() == [i == 5 for i in range(16)]
    assert torch.equal(U, U.triu()) and torch.isfinite(U).all()
    Hd = H.clone()
    Hd[5, 5] = 1.0
    Hd += 0.01 * torch.diag(Hd).mean() * torch.eye(16, dtype=torch.float64)
    torch.testing.assert_close((U.T @ U).double(), torch.linalg.inv(Hd), rtol=1e-4, atol=1e-5)
    assert H[5, 5] == 0  # input not modified


def test_decoder_layers_found(model):
    assert decoder_layers(model) is model.model.layers


def test_sequential_visits_every_layer_once_and_leaves_model_unchanged(model, calib):
    layers = decoder_layers(model)
    originals = list(layers)
    with torch.no_grad():
        before = [model(input_ids=b).logits for b in calib]
    calls = {i: 0 for i in range(len(layers))}
    counters = [layer.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
                for i, layer in enumerate(layers)]
    seen = []
    try:
        done = sequential(model, calib, default_filter, lambda n, m: Recorder(),
                          lambda n, m, s: seen.append((n, len(s.inputs))))
    finally:
        for h in counters:
            h.remove()
    names = list(selected_linears(model))
    assert done == names == [n for n, _ in seen]  # each selected Linear processed once, in order
    assert all(k == len(calib) for _, k in seen)  # its stats saw every batch once
    n = len(calib)  # each layer: a stats pass + an output pass (none after the last layer)
    assert calls == {i: n if i == len(layers) - 1 else 2 * n for i in range(len(layers))}
    assert list(layers) == originals  # the catcher is gone
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    with torch.no_grad():
        after = [model(input_ids=b).logits for b in calib]
    for a, b in zip(before, after):
        assert torch.equal(a, b)


def test_sequential_accumulators_match_full_forward(model, calib):
    """Layer-by-layer replay reproduces every Linear's inputs (so the HF kwargs were passed right)."""
    direct = direct_inputs(model, calib)

    class Pair:
        def __init__(self, n):
            self.norm, self.hess = InputNorm(n), Hessian(n, torch.float64)

        def add_batch(self, inp, out):
            self.norm.add_batch(inp, out)
            self.hess.add_batch(inp, out)

    stats = {}
    sequential(model, calib, default_filter, lambda n, m: Pair(m.in_features),
               lambda n, m, s: stats.__setitem__(n, s))
    assert set(stats) == set(direct)
    for name, X in direct.items():
        X = X.double()
        torch.testing.assert_close(stats[name].norm.norm(), X.norm(dim=0).float(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(stats[name].hess.H, 2 / X.shape[0] * X.T @ X, rtol=1e-4, atol=1e-6)


def test_sequential_feeds_next_layer_the_modified_outputs(calib):
    model = tiny_glm4(seed=3)
    stats = {}

    def process(name, module, s):
        stats[name] = s
        if ".layers.0." in name:
            module.weight.data.mul_(0.5)

    sequential(model, calib, default_filter, lambda n, m: Recorder(), process)
    direct = direct_inputs(model, calib)  # forward of the model as modified
    later = {n: X for n, X in direct.items() if ".layers.1." in n}
    assert len(later) == 6
    for name, X in later.items():  # layer 1 saw layer 0's outputs after layer 0 was modified
        torch.testing.assert_close(torch.cat(stats[name].inputs), X, rtol=1e-4, atol=1e-5)


def test_sequential_restores_model_when_process_fails(calib):
    model = tiny_glm4()
    layers = list(decoder_layers(model))

    def boom(name, module, s):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        sequential(model, calib, default_filter, lambda n, m: Recorder(), boom)
    assert list(decoder_layers(model)) == layers
    assert all(not m._forward_hooks for m in model.modules())


def test_sequential_warns_about_layers_outside_the_decoder(model, calib):
    with pytest.warns(UserWarning, match="lm_head"):
        done = sequential(model, calib[:1], lambda m, n: isinstance(m, torch.nn.Linear),
                          lambda n, m: Recorder(), lambda n, m, s: None)
    assert "lm_head" not in done


def test_sequential_needs_batches(model):
    with pytest.raises(ValueError, match="at least one batch"):
        sequential(model, [], default_filter, lambda n, m: Recorder(), lambda n, m, s: None)


@pytest.mark.parametrize("family", ["glm", "glm4v"], ids=["GlmForCausalLM", "Glm4vForConditionalGeneration"])
def test_sequential_replays_other_glm_families(family, calib):
    """GLM-4-9B-chat-hf / GLM-Edge (Glm) and GLM-4.1V / AutoGLM-Phone (Glm4v, M-RoPE) replay exactly."""
    model = random_glm(family)
    direct = direct_inputs(model, calib)
    stats = {}
    def in_decoder(module, name):
        return default_filter(module, name) and "visual" not in name

    done = sequential(model, calib, in_decoder, lambda n, m: Recorder(),
                      lambda n, m, s: stats.__setitem__(n, s))
    assert len(done) == 12 and set(done) <= set(direct)
    for name in done:
        torch.testing.assert_close(torch.cat(stats[name].inputs), direct[name], rtol=1e-4, atol=1e-5)
