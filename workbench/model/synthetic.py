"""Small random-weight GLM-family checkpoints, for tests and for trying the workbench without real weights.

    model = write_random_checkpoint(folder, family="glm4")   # folder: config.json, model.safetensors, tokenizer
    model, tokenizer = load_model(folder)                     # loads back with the same logits

Each family keeps the real checkpoints' shape ratios, scaled down: glm-4-9b-chat-hf (``glm``,
``GlmForCausalLM``; GLM-Edge has the same architecture) and GLM-4-9B-0414 (``glm4``,
``Glm4ForCausalLM``, with sandwich norms) have 32 heads / 2 KV heads, head_dim 128, partial RoPE
(factor 0.5), an MLP 13696 / 4096 = 3.34x hidden and a qkv bias; here hidden 64, 8 / 2 heads,
head_dim 8, MLP 224. GLM-4.1V's text model (``glm4v``, ``Glm4vForConditionalGeneration``) has
head_dim = hidden / heads and M-RoPE sections [8, 12, 12] of 32 rotary pairs; keeping that split
exact needs 8 pairs, so head_dim 32 there: hidden 128, 4 / 1 heads, sections [2, 3, 3], MLP 416,
and a one-block vision tower. The MLP width is the multiple of 32 nearest
3.34x hidden, so quantization groups of 32 divide every layer's input, as in the real models.

Every parameter is random (norm weights 1 + noise, biases non-zero), so a loader or transform that
drops a bias or a norm changes the logits. The weights are seeded: the same arguments give the same
checkpoint. The default tokenizer is open-autoglm-tiny's, so the task's prompts tokenize; a glm4v
checkpoint's tokenizer gains GLM-4.1V's prefix, image and answer tokens and its chat template, and the
folder its image processor (`workbench.model.vision`), so it loads as a vision-language model.
"""
from __future__ import annotations

import copy
import os
import pathlib

import torch
import transformers
from torch import nn
from transformers import AutoTokenizer, PreTrainedConfig, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from .load import DEFAULT_MODEL

__all__ = ["FAMILIES", "jitter_norms_and_biases_", "random_config", "random_model", "write_random_checkpoint"]

FAMILIES = {"glm": "GlmForCausalLM", "glm4": "Glm4ForCausalLM", "glm4v": "Glm4vForConditionalGeneration"}
_MLP_RATIO = 13696 / 4096  # intermediate / hidden of the 9B GLM-4 models
_DEFAULT_HIDDEN = {"glm": 64, "glm4": 64, "glm4v": 128}


def random_config(family: str = "glm4", *, vocab_size: int, hidden_size: int | None = None,
                  num_layers: int = 2, pad_token_id: int | None = 0,
                  eos_token_id: int | None = 0, image_token_ids: dict | None = None) -> PreTrainedConfig:
    """The config of a small model of one family (see the module docstring for the shapes).

    Args:
        family: "glm", "glm4" or "glm4v".
        vocab_size: rows of the embedding and the output layer (>= the tokenizer's length).
        hidden_size: None for the family's default (64; glm4v 128); a multiple of 64 (glm4v: 128),
            with the heads scaled along.
        num_layers: decoder layers.
        pad_token_id, eos_token_id: the tokenizer's ids.
        image_token_ids: glm4v: {token: id} of the tokenizer's image tokens (`vision.add_vision_tokens`).

    Returns:
        A transformers config for FAMILIES[family].
    """
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is not one of {', '.join(FAMILIES)}")
    step = _DEFAULT_HIDDEN[family]
    hidden = hidden_size or step
    if hidden <= 0 or hidden % step:
        raise ValueError(f"hidden_size for family {family!r} must be a positive multiple of {step}, got {hidden}")
    scale = hidden // step
    intermediate = 32 * round(hidden * _MLP_RATIO / 32)  # quantization groups of 32 divide it
    if family == "glm4v":
        text = dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                    num_hidden_layers=num_layers, num_attention_heads=4 * scale, num_key_value_heads=scale,
                    max_position_embeddings=2048, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                    rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5,
                                         mrope_section=[2, 3, 3]))
        vision = dict(depth=1, hidden_size=32, num_heads=2, intermediate_size=64, out_hidden_size=hidden)
        ids = image_token_ids or {}
        keys = dict(image_token_id="<|image|>", video_token_id="<|video|>", image_start_token_id="<|begin_of_image|>",
                    image_end_token_id="<|end_of_image|>", video_start_token_id="<|begin_of_video|>",
                    video_end_token_id="<|end_of_video|>")
        tokens = {key: ids[t] for key, t in keys.items() if t in ids}
        return transformers.Glm4vConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **tokens)
    config_class = transformers.GlmConfig if family == "glm" else transformers.Glm4Config
    return config_class(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                        num_hidden_layers=num_layers, num_attention_heads=8 * scale,
                        num_key_value_heads=2 * scale, head_dim=8, partial_rotary_factor=0.5,
                        attention_bias=True, max_position_embeddings=2048, pad_token_id=pad_token_id,
                        eos_token_id=eos_token_id, bos_token_id=None, tie_word_embeddings=False)


def random_model(family: str = "glm4", *, vocab_size: int, seed: int = 0, std: float = 0.1,
                 **config_kwargs) -> nn.Module:
    """A small model of one family with every parameter random; the global RNG is left as it was.

    Args:
        family: "glm", "glm4" or "glm4v".
        vocab_size: as random_config.
        seed: the same seed gives the same weights.
        std: standard deviation of the weights (norm weights: 1 + std * noise).
        **config_kwargs: hidden_size, num_layers, pad_token_id, eos_token_id (see random_config).

    Returns:
        The model in eval mode, float32.
    """
    config = random_config(family, vocab_size=vocab_size, **config_kwargs)
    with torch.random.fork_rng(devices=[]):  # transformers' own init draws from the global RNG
        torch.manual_seed(seed)
        model = getattr(transformers, FAMILIES[family])(config).eval()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
                is_norm = "norm" in name and name.endswith("weight")
                p.copy_(1 + std * noise if is_norm else std * noise)
    return model


def jitter_norms_and_biases_(model: nn.Module, norm_std: float, bias_std: float) -> nn.Module:
    """In place: norm weights 1 + norm_std * noise, biases bias_std * noise (global RNG, parameter order).

    A freshly initialised model has unit norms and zero biases, which hide a transform or an export
    that drops them; the other weights keep transformers' own initialisation.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + norm_std * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(bias_std * torch.randn_like(p))
    return model


def write_random_checkpoint(folder: str | os.PathLike, family: str = "glm4", *,
                            tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None = None,
                            vocab_size: int | None = None, seed: int = 0, max_image_tokens: int = 96,
                            **config_kwargs) -> nn.Module:
    """Write a small random-weight checkpoint of one family that load_model(folder) loads.

    The folder gets config.json, generation_config.json, model.safetensors and the tokenizer files,
    as save_pretrained writes them for a real checkpoint; glm4v also the chat template and
    preprocessor_config.json.

    Args:
        folder: where to write (created if missing; files already there are overwritten).
        family: "glm" (GlmForCausalLM), "glm4" (Glm4ForCausalLM) or "glm4v"
            (Glm4vForConditionalGeneration).
        tokenizer: a tokenizer or the folder of one; None: open-autoglm-tiny's (data/open-autoglm-tiny).
        vocab_size: None: len(tokenizer); larger values leave ids no token maps to.
        seed: the same seed gives the same weights.
        max_image_tokens: glm4v: the image processor's pixel budget, in merged 28x28 patches.
        **config_kwargs: hidden_size, num_layers (see random_config).

    Returns:
        The model as written (eval mode), e.g. to compare its logits with the loaded one's.
    """
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer or DEFAULT_MODEL, local_files_only=True)
    image_processor = None
    if family == "glm4v":
        from .vision import add_vision_tokens, image_processor_for

        tokenizer = copy.deepcopy(tokenizer)  # the caller's tokenizer keeps its vocabulary
        config_kwargs["image_token_ids"] = add_vision_tokens(tokenizer)
        image_processor = image_processor_for(max_image_tokens)
    vocab = vocab_size or len(tokenizer)
    if vocab < len(tokenizer):
        raise ValueError(f"vocab_size {vocab} is smaller than the tokenizer's {len(tokenizer)} tokens")
    model = random_model(family, vocab_size=vocab, seed=seed, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, **config_kwargs)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a one-shard write: no "Writing model shards" bar
    try:
        model.save_pretrained(folder)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(folder)
    if image_processor is not None:
        image_processor.save_pretrained(folder)
    return model
