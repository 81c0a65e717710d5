"""The cache layers: int8 round trip bound, the sink + window layer keeps the right tokens."""
import torch

from workbench.cache import SinkWindowLayer, dequantize_int8, quantize_int8


def test_int8_round_trip_error_is_below_half_a_step_per_token():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 50, 32) * torch.linspace(0.1, 10, 50)[None, None, :, None]  # (B, H, T, d)
    q, scale = quantize_int8(x)
    assert q.dtype == torch.int8 and scale.shape == (2, 3, 50, 1)
    err = (dequantize_int8(q, scale) - x).abs()
    assert (err <= scale.float() * 0.5 + 1e-3 * x.abs().amax(-1, keepdim=True)).all()
    assert err.max() / x.abs().max() < 0.005


def test_sink_window_keeps_sinks_and_recent_tokens_and_counts_positions():
    layer = SinkWindowLayer(window=6, sinks=2)
    seq = torch.arange(10, dtype=torch.float32).view(1, 1, 10, 1)  # token i carries value i
    k, v = layer.update(seq[:, :, :7], seq[:, :, :7])  # prefill of 7 tokens attends to all 7
    assert k.shape[-2] == 7
    assert layer.keys.flatten().tolist() == [0, 1, 3, 4, 5, 6]
    assert layer.get_mask_sizes(1) == (7, 1)  # 6 kept + 1 new; the new token sits at position 7
    for t in (7, 8, 9):
        layer.update(seq[:, :, t:t + 1], seq[:, :, t:t + 1])
    assert layer.keys.flatten().tolist() == [0, 1, 6, 7, 8, 9]
    assert layer.get_seq_length() == 10
