"""Tests for workbench.model.vision: a Glm4v checkpoint's processor, image tokens and errors."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from workbench.model import load_model, write_random_checkpoint
from workbench.model.vision import (CHAT_TEMPLATE, ProcessorError, is_vision_model, load_processor, open_image,
                                    screen_inputs, vision_tower)
from workbench.task import Step

STEP = Step("ep", 1, "Open the settings", "Home screen", ('do(action="Home")',), (), 'do(action="Back")', None)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-vl")
    write_random_checkpoint(path, "glm4v", max_image_tokens=24)
    return path


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    path = tmp_path_factory.mktemp("shots") / "s.png"
    im = Image.new("RGB", (360, 800), "white")
    im.paste((30, 90, 200), (20, 100, 340, 160))
    im.save(path)
    return path


def test_the_checkpoint_is_a_complete_vision_language_model(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"preprocessor_config.json", "config.json", "model.safetensors", "tokenizer.json"} <= names
    model, tok = load_model(folder)
    assert is_vision_model(model) and vision_tower(model) is model.model.visual
    proc = load_processor(folder)
    assert model.config.image_token_id == proc.image_token_id == tok.convert_tokens_to_ids("<|image|>")
    assert model.config.get_text_config().vocab_size == len(tok)


def test_inputs_follow_glm41vs_chat_layout_with_one_token_per_merged_patch(folder, shot):
    proc = load_processor(folder)
    step = Step(**{**STEP.__dict__, "screenshot": shot})
    x = screen_inputs(proc, step)
    grid = x["image_grid_thw"][0]
    n_image = int(grid.prod()) // 4
    assert 4 <= n_image <= 24  # the processor's pixel budget
    assert int((x["input_ids"] == proc.image_token_id).sum()) == n_image == int(x["mm_token_type_ids"].sum())
    assert x["pixel_values"].shape == (int(grid.prod()), 3 * 2 * 14 * 14)
    text = proc.tokenizer.decode(x["input_ids"][0])
    assert text.startswith("[gMASK]<sop><|system|>\n")
    assert "<|user|>\nOpen the settings\n\n{\"current_app\": \"Home screen\"}<|assistant|>\n<think></think>" in text
    assert text.endswith("<|end_of_image|>** Screen Info **\n\n{\"current_app\": \"Home screen\"}<|assistant|>\n")
    with_target = screen_inputs(proc, step, with_target=True)
    extra = with_target["input_ids"].shape[1] - x["input_ids"].shape[1]
    assert proc.tokenizer.decode(with_target["input_ids"][0, -extra:]) == '<think></think><answer>do(action="Back")</answer>'
    assert with_target["mm_token_type_ids"].shape == with_target["input_ids"].shape


def test_the_model_runs_on_the_inputs_and_the_vision_tower_matters(folder, shot):
    model, _ = load_model(folder)
    proc = load_processor(folder)
    x = screen_inputs(proc, Step(**{**STEP.__dict__, "screenshot": shot}))
    with torch.no_grad():
        a = model(**x).logits[0, -1]
        x["pixel_values"] = torch.zeros_like(x["pixel_values"])
        b = model(**x).logits[0, -1]
    assert (a - b).abs().max().item() > 1e-4  # the image reaches the logits


def test_missing_and_bad_inputs_are_named(folder, tmp_path, shot):
    with pytest.raises(ProcessorError, match="no preprocessor_config.json"):
        load_processor(tmp_path)
    with pytest.raises(ProcessorError, match="screenshot not found"):
        open_image(tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ProcessorError, match="not a readable image"):
        open_image(tmp_path / "bad.png")
    proc = load_processor(folder)
    with pytest.raises(ProcessorError, match="has no screenshot"):
        screen_inputs(proc, STEP)
    with pytest.raises(ProcessorError, match="1 images but 0"):
        proc([{"role": "user", "content": [{"type": "image"}]}], [])
    assert "[gMASK]<sop>" in CHAT_TEMPLATE


def test_inputs_equal_transformers_glm4v_processor_where_torchvision_is_installed(folder, shot):
    pytest.importorskip("torchvision", reason="transformers' Glm4vProcessor needs a video processor, which needs "
                                              "torchvision (no build for torch 2.13.0 CPU here)")
    from transformers import AutoProcessor

    theirs = AutoProcessor.from_pretrained(folder)
    step = Step(**{**STEP.__dict__, "screenshot": shot})
    ours = screen_inputs(load_processor(folder), step)
    from workbench.task.open_autoglm import messages

    text = theirs.apply_chat_template(messages(step), tokenize=False, add_generation_prompt=True)
    want = theirs(text=[text], images=[open_image(shot)], return_tensors="pt")
    assert torch.equal(want["input_ids"], ours["input_ids"])
    assert torch.allclose(want["pixel_values"], ours["pixel_values"])
    assert torch.equal(want["image_grid_thw"], ours["image_grid_thw"])
