import torch

from workbench.measure import peak_rss_bytes, weight_bytes


def test_weight_bytes_counts_parameters_as_stored():
    lin = torch.nn.Linear(64, 32)  # 64*32 + 32 float32
    assert weight_bytes(lin) == (64 * 32 + 32) * 4
    assert weight_bytes(lin.to(torch.bfloat16)) == (64 * 32 + 32) * 2


def test_weight_bytes_counts_tied_weights_once_and_skips_non_persistent_buffers():
    m = torch.nn.Module()
    m.a = torch.nn.Embedding(100, 16)
    m.b = torch.nn.Linear(16, 100, bias=False)
    m.b.weight = m.a.weight
    m.register_buffer("table", torch.zeros(1000), persistent=False)
    m.register_buffer("saved", torch.zeros(10, dtype=torch.int8))
    assert weight_bytes(m) == 100 * 16 * 4 + 10


def test_peak_rss_grows_with_a_large_allocation():
    before = peak_rss_bytes()
    x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    after = peak_rss_bytes()
    assert x.sum() > 0 and before > 10 * 2**20
    assert after >= before
