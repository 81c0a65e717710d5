"""Tests for workbench.model.load: tiny random checkpoints of each GLM family (workbench.model.synthetic),
round trip and errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import DynamicCache, PreTrainedTokenizerFast

import workbench.model.load as load_mod
from workbench.model import DEFAULT_MODEL, SUPPORTED_ARCHITECTURES, ModelLoadError, load_model
from workbench.model.synthetic import FAMILIES as SYNTHETIC_FAMILIES
from workbench.model.synthetic import random_model, write_random_checkpoint

WORDS = ("do action Tap Back Home element text open the app settings wifi "
         "( ) [ ] , = \" 0 1 2 3 4 5 6 7 8 9").split()
SPECIALS = ["<pad>", "<unk>", "<eos>"]
VOCAB = 64
SENTENCE = "open the settings app Tap wifi"
IDS = torch.tensor([[5, 17, 3, 40, 22, 9, 61, 12], [7, 7, 30, 1, 2, 44, 18, 63]])  # (B=2, T=8)

FAMILIES = {arch: family for family, arch in SYNTHETIC_FAMILIES.items()}  # architecture -> family


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


def _write(folder, arch: str) -> torch.nn.Module:
    """A tiny random checkpoint of `arch` with the word-level tokenizer; returns the model as saved.
    Every parameter is random (biases non-zero, norm weights 1 + noise), so dropped ones show."""
    return write_random_checkpoint(folder, FAMILIES[arch], tokenizer=_tokenizer(), vocab_size=VOCAB)


@pytest.fixture(scope="module", params=list(FAMILIES))
def checkpoint(request, tmp_path_factory):
    """(family, folder, original model): a saved tiny checkpoint of one family."""
    arch = request.param
    folder = tmp_path_factory.mktemp(arch)
    model = _write(folder, arch)
    return arch, folder, model


@pytest.fixture
def broken(checkpoint, tmp_path):
    """A fresh copy of the checkpoint folder to damage."""
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint[1], folder)
    return folder


def test_supported_architectures_cover_the_families():
    assert set(SUPPORTED_ARCHITECTURES) == set(FAMILIES)


def test_loads_same_logits_and_tokenizer(checkpoint):
    arch, folder, original = checkpoint
    model, tok = load_model(folder)
    assert type(model).__name__ == arch
    assert not model.training
    with torch.no_grad():
        want = original(input_ids=IDS).logits
        got = model(input_ids=IDS).logits
    assert got.shape == (2, 8, VOCAB)
    assert (got - want).abs().max().item() < 1e-5
    ids = tok(SENTENCE)["input_ids"]
    assert tok.decode(ids) == SENTENCE
    assert tok.eos_token == "<eos>" and tok.pad_token_id == 0


def test_incremental_decode_matches_full_forward(checkpoint):
    _, folder, _ = checkpoint
    model, _ = load_model(folder)
    with torch.no_grad():
        full = model(input_ids=IDS).logits  # (2, 8, V)
        for cache in (None, DynamicCache()):  # a fresh cache object, as the generation loop passes
            out = model(input_ids=IDS[:, :5], past_key_values=cache, use_cache=True)
            assert isinstance(out.past_key_values, DynamicCache)
            steps = [out.logits]
            for t in range(5, 8):
                out = model(input_ids=IDS[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True)
                steps.append(out.logits)
            assert out.past_key_values.get_seq_length() == 8
            assert (torch.cat(steps, dim=1) - full).abs().max().item() < 1e-4


def test_dtype(checkpoint):
    model, _ = load_model(checkpoint[1], dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_glm4v_loads_with_its_vision_tower_and_names_a_missing_processor_file(tmp_path):
    _write(tmp_path / "a", "Glm4vForConditionalGeneration")
    model, _ = load_model(tmp_path / "a")
    assert sum(p.numel() for p in model.model.visual.parameters()) > 0
    (tmp_path / "a" / "preprocessor_config.json").unlink()
    with pytest.raises(ModelLoadError, match="preprocessor_config.json.*vision=False"):
        load_model(tmp_path / "a")
    text_only, _ = load_model(tmp_path / "a", vision=False)  # the language model alone needs no processor
    assert sum(p.numel() for p in text_only.model.visual.parameters()) == 0


def test_dtype_and_device_names_are_checked():
    assert load_mod.resolve_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ModelLoadError, match="float32, bfloat16, float16"):
        load_mod.resolve_dtype("int4")
    with pytest.raises(ModelLoadError, match="cpu.*cuda"):
        load_mod.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="sees no CUDA GPU; use --device cpu"):
            load_mod.resolve_device("cuda")


def test_glm4v_is_text_only_and_saves(tmp_path):
    arch = "Glm4vForConditionalGeneration"
    original = _write(tmp_path / "a", arch)
    model, tok = load_model(tmp_path / "a", vision=False)
    assert sum(p.numel() for p in model.model.visual.parameters()) == 0
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in original.parameters())
    with pytest.raises(RuntimeError, match="text-only"):
        model(input_ids=IDS, pixel_values=torch.zeros(4, 3 * 2 * 14 * 14),
              image_grid_thw=torch.tensor([[1, 2, 2]]))
    # save_pretrained writes the text weights; the folder loads again with the same logits.
    model.save_pretrained(tmp_path / "b")
    tok.save_pretrained(tmp_path / "b")
    again, _ = load_model(tmp_path / "b", vision=False)
    with torch.no_grad():
        diff = (again(input_ids=IDS).logits - original(input_ids=IDS).logits).abs().max().item()
    assert diff < 1e-5


def _unknown_arch(folder):
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _chatglm(folder):
    config = {"architectures": ["ChatGLMModel"], "model_type": "chatglm"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _pickle_only(folder):
    for f in folder.glob("*.safetensors"):
        f.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    return folder


def _no_weights(folder):
    for f in folder.glob("*.safetensors"):
        f.unlink()
    return folder


def _truncated(folder):
    f = folder / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    return folder


def _no_tokenizer(folder):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    return folder


def _unlink(name):
    def damage(folder):
        (folder / name).unlink()
        return folder
    return damage


def _bad_json(folder):
    (folder / "config.json").write_text("{not json")
    return folder


ERRORS = {  # damage(folder) -> path to load, substrings the message must contain
    "missing": (lambda f: f.parent / "does-not-exist", ["does-not-exist", "does not exist"]),
    "file": (lambda f: f / "config.json", ["config.json", "is not a directory"]),
    "no_config": (_unlink("config.json"), ["no config.json"]),
    "bad_json": (_bad_json, ["config.json", "not valid JSON"]),
    "unknown_arch": (_unknown_arch, ["LlamaForCausalLM", *SUPPORTED_ARCHITECTURES]),
    "chatglm": (_chatglm, ["ChatGLMModel", "trust_remote_code", "glm-4-9b-chat-hf"]),
    "pickle_only": (_pickle_only, ["pytorch_model.bin", "pickle", "refused", "safety",
                                   "save_pretrained(folder, safe_serialization=True)"]),
    "no_weights": (_no_weights, ["no *.safetensors", "save_pretrained"]),
    "truncated": (_truncated, ["model.safetensors", "truncated or corrupt"]),
    "no_tokenizer": (_no_tokenizer, ["tokenizer.json", "tokenizer_config.json"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_folder_raises_with_hint(broken, case):
    damage, needles = ERRORS[case]
    path = damage(broken)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    for needle in needles:
        assert needle in message
    if case != "missing":
        assert str(broken) in message


def test_sharded_checkpoint(tmp_path):
    original = random_model("glm4", vocab_size=VOCAB, pad_token_id=0, eos_token_id=2)
    original.save_pretrained(tmp_path, max_shard_size="40KB")
    _tokenizer().save_pretrained(tmp_path)
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    model, _ = load_model(str(tmp_path))
    with torch.no_grad():
        assert (model(input_ids=IDS).logits - original(input_ids=IDS).logits).abs().max().item() < 1e-5
    shards[-1].unlink()
    with pytest.raises(ModelLoadError, match=rf"{shards[-1].name}.*model.safetensors.index.json"):
        load_model(tmp_path)


def test_unreachable_hub_id(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # no network attempt
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # "no-such-org/no-such-model" is not a local path here
    with pytest.raises(ModelLoadError) as info:
        load_model("no-such-org/no-such-model")
    message = str(info.value)
    assert "no-such-org/no-such-model" in message
    assert "neither a local folder nor reachable" in message and "offline by default" in message


def test_missing_default_model_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(load_mod, "DEFAULT_MODEL", tmp_path / "open-autoglm-tiny")
    with pytest.raises(ModelLoadError, match="scripts/train_tiny.py"):
        load_model()


def test_default_model_path():
    assert DEFAULT_MODEL == Path(load_mod.__file__).resolve().parents[2] / "data" / "open-autoglm-tiny"


@pytest.mark.skipif(not (DEFAULT_MODEL / "config.json").is_file(),
                    reason=f"open-autoglm-tiny not built yet ({DEFAULT_MODEL}/config.json missing)")
def test_default_model():
    model, tok = load_model()
    assert type(model).__name__ == "Glm4ForCausalLM"
    assert model.config.architectures == ["Glm4ForCausalLM"]
    text = 'do(action="Tap", element=[500,870])'
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_embedded_models_load_by_name():
    from workbench.model import DEFAULT_VL_MODEL, EMBEDDED_MODELS

    assert EMBEDDED_MODELS == {"open-autoglm-tiny": DEFAULT_MODEL, "open-autoglm-tiny-vl": DEFAULT_VL_MODEL}
    assert DEFAULT_VL_MODEL.parent == DEFAULT_MODEL.parent
    model, _ = load_model("open-autoglm-tiny")
    assert Path(model.config._name_or_path).resolve() == DEFAULT_MODEL
    assert load_mod.embedded_path("some/folder") == "some/folder" and load_mod.embedded_path(None) is None
