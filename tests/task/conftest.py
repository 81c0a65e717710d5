"""Fixtures of the task tests: the seeded episode generator (scripts/ is on pytest's pythonpath).
The committed episode files (`eval_steps`, `calib_steps`) come from tests/conftest.py."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def gen():
    """The generator module ``scripts/gen_episodes.py``."""
    import gen_episodes

    return gen_episodes


@pytest.fixture(scope="session")
def generated_eval(gen):
    """2000+ freshly generated eval steps (whole episodes)."""
    return gen.generate("eval", 2000)
