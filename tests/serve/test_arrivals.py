"""The request stream: seeded Poisson arrivals and the steps' prompt ids."""
import numpy as np
import pytest

from workbench.measure.accuracy import encode_prompt
from workbench.serve import poisson_arrivals, step_prompts


def test_seeded_and_increasing():
    a = poisson_arrivals(500, 20.0, seed=3)
    assert a == poisson_arrivals(500, 20.0, seed=3)
    assert a != poisson_arrivals(500, 20.0, seed=4)
    assert len(a) == 500 and a[0] > 0 and all(x < y for x, y in zip(a, a[1:]))
    assert poisson_arrivals(0, 5.0) == []


@pytest.mark.parametrize("rate", [0.5, 20.0, 300.0])
def test_mean_rate_and_exponential_gaps(rate):
    n = 20000
    a = np.array(poisson_arrivals(n, rate, seed=0))
    gaps = np.diff(a, prepend=0.0)
    # mean gap 1/rate within 5 standard errors (1/rate/sqrt(n) each); exponential: std == mean
    assert abs(gaps.mean() * rate - 1) < 5 / np.sqrt(n)
    assert abs(gaps.std() * rate - 1) < 0.05
    assert abs(n / a[-1] / rate - 1) < 5 / np.sqrt(n)


def test_bad_arguments():
    with pytest.raises(ValueError, match="rate"):
        poisson_arrivals(3, 0.0)
    with pytest.raises(ValueError, match="n"):
        poisson_arrivals(-1, 1.0)


def test_prompts_are_the_measured_prompts(tiny, eval_steps):
    _, tok = tiny
    ids = step_prompts(tok, eval_steps[:3])
    assert [len(p) for p in ids] == [encode_prompt(tok, s).shape[1] for s in eval_steps[:3]]
    assert all(p == encode_prompt(tok, s)[0].tolist() for p, s in zip(ids, eval_steps[:3]))
