"""The shipped vision-language model, data/open-autoglm-tiny-vl, loads like the real checkpoint."""
import json

import pytest
import torch

from workbench.model import DEFAULT_VL_MODEL, load_model

pytestmark = pytest.mark.skipif(not (DEFAULT_VL_MODEL / "model.safetensors").is_file(),
                                reason="open-autoglm-tiny-vl is not in this checkout (scripts/train_tiny_vl.py)")


def test_it_is_a_glm4v_with_glm_4_1v_s_processor_files():
    cfg = json.loads((DEFAULT_VL_MODEL / "config.json").read_text())
    assert cfg["architectures"] == ["Glm4vForConditionalGeneration"] and cfg["model_type"] == "glm4v"
    assert cfg["vision_config"]["patch_size"] == 14 and cfg["vision_config"]["spatial_merge_size"] == 2
    for name in ("preprocessor_config.json", "chat_template.jinja", "tokenizer.json", "README.md", "eval.json"):
        assert (DEFAULT_VL_MODEL / name).is_file(), name


def test_loads_by_name_through_the_auto_classes_its_processor_composes():
    """AutoProcessor's parts load from the folder: the tokenizer with GLM-4.1V's chat template and image tokens,
    the image processor with the committed pixel budget; the workbench's processor gives the model its inputs."""
    from PIL import Image
    from transformers import AutoImageProcessor, AutoTokenizer

    from workbench.model.vision import load_processor

    tok = AutoTokenizer.from_pretrained(DEFAULT_VL_MODEL, local_files_only=True)
    assert tok.chat_template and tok.convert_tokens_to_ids("<|image|>") != tok.unk_token_id
    images = AutoImageProcessor.from_pretrained(DEFAULT_VL_MODEL, local_files_only=True)
    assert images(images=[Image.new("RGB", (360, 800))], return_tensors="pt")["image_grid_thw"].tolist() == [[1, 28, 12]]
    model, _ = load_model("open-autoglm-tiny-vl")
    proc = load_processor("open-autoglm-tiny-vl")
    x = proc([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Open Mail"}]}],
             [Image.new("RGB", (360, 800), "white")])
    assert int(x["mm_token_type_ids"].sum()) == 84
    with torch.no_grad():
        assert torch.isfinite(model(**x).logits).all()


def test_auto_processor_gives_the_same_inputs_where_torchvision_is_installed():
    pytest.importorskip("torchvision", reason="transformers' Glm4vProcessor needs a video processor, which needs "
                                              "torchvision (no build for torch 2.13.0 CPU here)")
    from PIL import Image
    from transformers import AutoProcessor

    from workbench.model.vision import load_processor

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Open Mail"}]}]
    image = Image.new("RGB", (360, 800), "white")
    theirs = AutoProcessor.from_pretrained(DEFAULT_VL_MODEL, local_files_only=True)
    text = theirs.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    want = theirs(text=[text], images=[image], return_tensors="pt")
    got = load_processor(DEFAULT_VL_MODEL)(messages, [image])
    assert torch.equal(want["input_ids"], got["input_ids"]) and torch.allclose(want["pixel_values"], got["pixel_values"])
