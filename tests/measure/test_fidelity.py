import math

import pytest
import torch

from workbench.measure import kl_and_ppl


def test_identical_models_have_zero_kl_and_exact_ppl():
    torch.manual_seed(0)
    logp = [torch.log_softmax(torch.randn(4, 10), -1), torch.log_softmax(torch.randn(2, 10), -1)]
    targets = [[1, 2, 3, 4], [0, 9]]
    kl, ppl = kl_and_ppl(logp, logp, targets)
    assert kl == pytest.approx(0.0, abs=1e-7)
    nll = -sum(float(lp[i, t]) for lp, tg in zip(logp, targets) for i, t in enumerate(tg)) / 6
    assert ppl == pytest.approx(math.exp(nll), rel=1e-6)


def test_uniform_candidate_gives_vocab_perplexity_and_known_kl():
    V = 8
    ref = [torch.log(torch.tensor([[0.5] + [0.5 / (V - 1)] * (V - 1)]))]
    uni = [torch.full((1, V), -math.log(V))]
    kl, ppl = kl_and_ppl(ref, uni, [[0]])
    assert ppl == pytest.approx(V)
    expected = 0.5 * math.log(0.5 * V) + 0.5 * math.log(0.5 / (V - 1) * V)
    assert kl == pytest.approx(expected, rel=1e-5)
    assert kl > 0
