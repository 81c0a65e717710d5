"""Shared fixtures: the embedded default model, loaded once per test session."""
import pytest


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of open-autoglm-tiny."""
    from workbench.model import load_model

    return load_model()


@pytest.fixture(scope="session")
def eval_steps():
    from workbench.measure import DEFAULT_EPISODES
    from workbench.task import load_steps

    return load_steps(DEFAULT_EPISODES)


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
