"""Shared fixtures of the task tests: the committed episode files and the seeded generator."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from workbench.task import load_steps

ROOT = Path(__file__).resolve().parents[2]
EPISODES = ROOT / "data" / "episodes"
EVAL_PATH = EPISODES / "eval.jsonl"
CALIB_PATH = EPISODES / "calib.jsonl"
SCRIPTS = ROOT / "scripts"


@pytest.fixture(scope="session")
def gen():
    """The generator module ``scripts/gen_episodes.py``."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module("gen_episodes")


@pytest.fixture(scope="session")
def eval_steps():
    return load_steps(EVAL_PATH)


@pytest.fixture(scope="session")
def calib_steps():
    return load_steps(CALIB_PATH)


@pytest.fixture(scope="session")
def generated_eval(gen):
    """2000+ freshly generated eval steps (whole episodes)."""
    return gen.generate("eval", 2000)

