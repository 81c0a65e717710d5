"""Shared fixtures.

Session-wide (do not modify what they return): `tiny`, open-autoglm-tiny (model, tokenizer); `eval_steps`,
`calib_steps`, the committed episode files. Per test module (a module may modify its own copy): `model`, a
small random GLM-4 (random_glm.tiny_glm4); `calib`, six random calibration batches for it; `layer_hessians`,
every selected Linear's weight and Hessian on those batches. `fake_meter` stands in for a PointMeter.
A module's own fixture of the same name overrides these.
"""
import pytest
import torch
from random_glm import random_batches, tiny_glm4


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of open-autoglm-tiny."""
    from workbench.model import load_model

    return load_model()


@pytest.fixture(scope="session")
def eval_steps():
    """The committed eval split (data/episodes/eval.jsonl)."""
    from workbench.task import DEFAULT_EPISODES, load_steps

    return load_steps(DEFAULT_EPISODES)


@pytest.fixture(scope="session")
def calib_steps():
    """The committed calibration split (data/episodes/calib.jsonl)."""
    from workbench.task import DEFAULT_CALIB, load_steps

    return load_steps(DEFAULT_CALIB)


@pytest.fixture(scope="module")
def model():
    """random_glm.tiny_glm4(): a random Glm4ForCausalLM (hidden 64, 2 layers, vocab 100), random biases and norms."""
    return tiny_glm4()


@pytest.fixture(scope="module")
def calib():
    """Six calibration batches of random ids for `model`: (1, T) each, T = 9, 17, 12, 20, 15, 24."""
    return random_batches((9, 17, 12, 20, 15, 24))


@pytest.fixture(scope="module")
def layer_hessians(model, calib):
    """name -> (weight, H) of every selected Linear of `model` on `calib` (model unchanged), H in float64."""
    from workbench.calib import Hessian, sequential
    from workbench.select import default_filter

    got = {}
    sequential(model, calib, default_filter, lambda n, m: Hessian(m.in_features, torch.float64),
               lambda n, m, s: got.__setitem__(n, (m.weight.detach().clone(), s.H)))
    return got


class FakeMeter:
    """Stands in for a PointMeter where the test is about storing, sweeping or drawing points:
    a deterministic Point per recipe (accuracy falls with the pruning ratio and low bits, latency and
    memory fall with fewer bits), and a count of how many it measured."""

    fingerprint, data_hash = "fake-model", "fake-data"
    settings = {"latency_repeats": 1}
    steps, latency_repeats = [None] * 10, 1
    model = tokenizer = calib = None  # what the export button hands on
    engine = "ort"

    def __init__(self):
        self.calls = 0

    def __call__(self, recipe, *, on_progress=None):
        from workbench.measure.point import Point
        from workbench.measure.records import Spread
        from workbench.recipe import Recipe

        recipe = (recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)).to_json()
        self.calls += 1
        for i in range(3):
            if on_progress is not None:
                on_progress(i + 1, 3)
        ratio = recipe.get("prune", {}).get("ratio", 0.0)
        bits = recipe.get("quant", {}).get("bits", 32)
        step = round(0.9 - 0.5 * ratio ** 2 - (0.3 if bits <= 3 else 0.0), 6)
        ms = 1.0 + bits / 8 - ratio
        return Point(recipe, 10, step, 0.95, 0.0, ratio / 10, 1.1, Spread(40.0, 44.0, 3), Spread(ms, ms * 1.1, 3),
                     int(1e6 * bits / 32 * (1 - ratio)), "fake", 0.01, 1000)


@pytest.fixture
def fake_meter():
    return FakeMeter()
