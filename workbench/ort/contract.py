"""The decoder graph's contract: shapes, opset and the input / output names every ONNX graph we write
(plain or fused, float or MatMulNBits) shares, so one runtime, gate and genai_config serve them all."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

OPSET = 18
EXTERNAL_DATA_BYTES = 1 << 30  # weights above this go to model.onnx.data (protobuf: 2 GiB)


@dataclass(frozen=True)
class DecoderShape:
    """The shapes an ONNX decoder graph is built for (read from the model's config, after pruning)."""

    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int

    @classmethod
    def of(cls, model: nn.Module) -> "DecoderShape":
        """Args: model: a GLM-family causal LM. Returns: its DecoderShape."""
        cfg = model.config.get_text_config()
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cls(cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, head_dim,
                   cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size)


def input_names(num_layers: int) -> list[str]:
    """Graph input names: input_ids, attention_mask, position_ids, past_key_values.{i}.key/value."""
    return ["input_ids", "attention_mask", "position_ids"] + [
        f"past_key_values.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]


def output_names(num_layers: int) -> list[str]:
    """Graph output names: logits, present.{i}.key/value."""
    return ["logits"] + [f"present.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]
