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
