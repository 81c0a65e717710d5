"""Load a GLM-family checkpoint (the embedded tiny model, a local folder, or a hub id) for the workbench.

Supported: ``GlmForCausalLM`` (glm-4-9b-chat-hf, GLM-Edge), ``Glm4ForCausalLM`` (GLM-4-9B-0414,
open-autoglm-tiny) and the language model inside ``Glm4vForConditionalGeneration`` (GLM-4.1V,
AutoGLM-Phone-9B). Local folders load offline (``local_files_only=True``) and from safetensors
only: pickle checkpoints are refused. The folder is checked before transformers sees it, so a
bad folder fails with a ``ModelLoadError`` that names the path and the fix.

Every text model is used the same way::

    out = model(input_ids=ids, past_key_values=cache_or_None, use_cache=True)
    out.logits           # (B, T, V)
    out.past_key_values  # transformers DynamicCache; pass it back to decode the next tokens

Glm4v (GLM-4.1V, AutoGLM-Phone-9B) loads as the vision-language model it is, vision tower
included; its processor files (``preprocessor_config.json``, a chat template) must be there
(`workbench.model.vision.load_processor`), and a missing one is named. ``vision=False`` loads it
text-only instead: the vision tower is dropped after loading (``model.model.visual`` becomes a stub
that raises on use), so the knobs and the memory figures see only the weights that run. Text-only
positions need no wrapper: with no image the model numbers tokens ``past_len, past_len + 1, ...`` on
all three M-RoPE axes, which is plain RoPE. Use ``model.config.get_text_config()`` for the decoder
shape (layers, heads, vocab).
Caveats of text-only: peak memory while loading still includes the vision tower (freed right after), and
``save_pretrained`` writes the text weights only, so the saved folder reloads here as before (with
transformers' report listing the ``model.visual.*`` weights as MISSING) but a plain
``from_pretrained`` of it would get a randomly initialised vision tower.
"""
from __future__ import annotations

import json
import os
import pathlib
import re

import torch
import transformers
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

__all__ = ["DEFAULT_MODEL", "DEFAULT_VL_MODEL", "DTYPES", "EMBEDDED_MODELS", "SUPPORTED_ARCHITECTURES", "ModelLoadError", "load_model", "resolve_device", "resolve_dtype"]

DEFAULT_MODEL = pathlib.Path(__file__).resolve().parents[2] / "data" / "open-autoglm-tiny"
DEFAULT_VL_MODEL = DEFAULT_MODEL.with_name("open-autoglm-tiny-vl")
# the models the repository ships, by name: `--model open-autoglm-tiny-vl` is its folder
EMBEDDED_MODELS = {"open-autoglm-tiny": DEFAULT_MODEL, "open-autoglm-tiny-vl": DEFAULT_VL_MODEL}


def embedded_path(source):
    """The folder of an embedded model named by `source` ("open-autoglm-tiny-vl"), else `source` as given."""
    return EMBEDDED_MODELS.get(source, source) if isinstance(source, str) else source
SUPPORTED_ARCHITECTURES = ("GlmForCausalLM", "Glm4ForCausalLM", "Glm4vForConditionalGeneration")

_BY_MODEL_TYPE = {  # used when config.json has no "architectures"
    "glm": "GlmForCausalLM", "glm4": "Glm4ForCausalLM", "glm4v": "Glm4vForConditionalGeneration",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "org/name"
_PICKLE_GLOBS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
_CONVERT_HINT = (
    "convert it once, in a trusted environment, by loading it with transformers and calling "
    "save_pretrained(folder, safe_serialization=True) (transformers >= 5 always writes safetensors)"
)


class ModelLoadError(ValueError):
    """A checkpoint cannot be loaded; the message says what was found and how to fix it."""


def load_model(
    source: str | os.PathLike | None = None, *, dtype: torch.dtype = torch.float32, vision: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """Load a supported GLM-family checkpoint and its tokenizer.

    No argument -> open-autoglm-tiny from DEFAULT_MODEL; the name of an embedded model
    (EMBEDDED_MODELS: "open-autoglm-tiny", "open-autoglm-tiny-vl") -> its folder. A local folder of an HF-format checkpoint
    of a supported architecture loads offline (local_files_only=True), safetensors only (never
    pickle). A string that is not an existing path but looks like a hub id "org/name" is fetched
    from the Hugging Face Hub, which needs a network.

    Args:
        source: folder path, hub id, embedded model name, or None for the embedded default model.
        dtype: parameter dtype of the loaded model (torch.float32, torch.bfloat16, ...) or its name.
        vision: Glm4v only: keep the vision tower (True; the processor files must be there) or load
            the language model alone (False).
        device: where the model lives ("cpu", "cuda", "cuda:1").

    Returns:
        (model, tokenizer): the model in eval mode and its tokenizer.

    Raises:
        ModelLoadError: the folder or hub id cannot be loaded; the message names the fix.
    """
    dtype, device = resolve_dtype(dtype), resolve_device(device)
    if source is None:
        if not (DEFAULT_MODEL / "config.json").is_file():
            raise ModelLoadError(
                f"The embedded model open-autoglm-tiny is missing at {DEFAULT_MODEL}; "
                "train it with `python scripts/train_tiny.py --out data/open-autoglm-tiny` "
                "or pass the folder of another checkpoint."
            )
        source = DEFAULT_MODEL
    source = embedded_path(source)
    path = pathlib.Path(source).expanduser()
    if isinstance(source, str) and not path.exists() and _HUB_ID.match(source):
        return _load_from_hub(source, dtype, vision, device)
    architecture = _check_folder(path)
    if architecture == "Glm4vForConditionalGeneration" and vision:
        from .vision import ProcessorError, load_processor

        try:
            load_processor(path)
        except ProcessorError as e:
            raise ModelLoadError(str(e)) from None
    return _load(str(path), architecture, dtype, vision, device, local_files_only=True, where=str(path))


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype) -> torch.dtype:
    """A torch dtype from itself or its name ("float32", "bfloat16", "float16"); ModelLoadError otherwise."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ModelLoadError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def resolve_device(device) -> torch.device:
    """A torch device that exists here; ModelLoadError naming the fix for "cuda" without a GPU."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ModelLoadError(f"device must be 'cpu' or 'cuda[:N]', got {device!r} ({e})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device} was asked for, but this torch ({torch.__version__}) sees no CUDA "
                                 f"GPU; use --device cpu, or install a CUDA build of torch on a machine with a GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelLoadError(f"device {device} does not exist: {torch.cuda.device_count()} GPU(s) here")
    elif device.type != "cpu":
        raise ModelLoadError(f"device must be 'cpu' or 'cuda[:N]', got {device}")
    return device


def _check_folder(path: pathlib.Path) -> str:
    """Check a checkpoint folder without loading it; return its architecture name."""
    if not path.exists():
        raise ModelLoadError(
            f"{path} does not exist; pass the folder of a Hugging Face-format checkpoint "
            "(with config.json, *.safetensors and tokenizer files) or a hub id 'org/name'."
        )
    if not path.is_dir():
        raise ModelLoadError(
            f"{path} is not a directory; pass the checkpoint folder that contains config.json, "
            "not a file inside it."
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(
            f"{path} has no config.json, so it is not a Hugging Face-format checkpoint; "
            "save the model with save_pretrained() or copy the complete checkpoint folder."
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"{config_file} is not valid JSON ({exc}); restore it from the original checkpoint."
        ) from exc
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_file} is not a JSON object; restore it from the original checkpoint.")
    architecture = _architecture(config, str(config_file))
    for weights in _weight_files(path):
        try:  # parses the header and checks that the file covers every tensor; reads no data
            with safe_open(str(weights), framework="pt"):
                pass
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise ModelLoadError(
                f"The weights file {weights} is truncated or corrupt ({exc}); copy or download it again."
            ) from exc
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"{path} has no tokenizer files ({' or '.join(_TOKENIZER_FILES)}); copy them from the "
            "original checkpoint or save the tokenizer there with tokenizer.save_pretrained(folder)."
        )
    return architecture


def _architecture(config: dict, where: str) -> str:
    """The supported architecture a config.json declares, or ModelLoadError."""
    architectures = config.get("architectures") or []
    model_type = config.get("model_type")
    for name in architectures:
        if name in SUPPORTED_ARCHITECTURES:
            return name
    if not architectures and model_type in _BY_MODEL_TYPE:
        return _BY_MODEL_TYPE[model_type]
    found = f"model_type {model_type!r}"
    if architectures:
        found = f"architectures {architectures} ({found})"
    hint = ""
    if model_type == "chatglm" or any("ChatGLM" in str(a) for a in architectures):
        hint = (
            " The old remote-code ChatGLM format needs trust_remote_code, which the workbench does not"
            " run; use the transformers-native conversion of the checkpoint (e.g. glm-4-9b-chat-hf)."
        )
    raise ModelLoadError(
        f"{where} declares {found}, which the workbench does not load; "
        f"supported architectures are {', '.join(SUPPORTED_ARCHITECTURES)}.{hint}"
    )


def _weight_files(path: pathlib.Path) -> list[pathlib.Path]:
    """The safetensors files transformers would load from `path` (same order of preference)."""
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted({path / name for name in weight_map.values()})
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(
                f"{index} is not a valid safetensors index ({exc!r}); "
                "restore it from the original checkpoint."
            ) from exc
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise ModelLoadError(
                f"{path} lacks the weight shard(s) {', '.join(missing)} listed in {index.name}; "
                "copy the complete checkpoint folder."
            )
        return shards
    pickles = sorted({p.name for pattern in _PICKLE_GLOBS for p in path.glob(pattern)})
    if pickles:
        raise ModelLoadError(
            f"{path} has only pickle weights ({', '.join(pickles)}); pickle checkpoints are refused for "
            f"safety (unpickling can run arbitrary code): {_CONVERT_HINT}."
        )
    others = sorted(p.name for p in path.glob("*.safetensors"))
    found = f"only {', '.join(others)}" if others else "no *.safetensors file"
    raise ModelLoadError(
        f"{path} has {found}, but needs model.safetensors or model.safetensors.index.json; "
        "save the model there with save_pretrained(folder)."
    )


def _load_from_hub(repo_id: str, dtype: torch.dtype, vision: bool,
                   device: torch.device) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """Fetch the config of a hub id, check it, then load model and tokenizer (needs a network)."""
    try:
        # only where the user named a hub id and has a network; nothing in the workbench does this itself
        config = transformers.AutoConfig.from_pretrained(repo_id).to_dict()
    except Exception as exc:  # offline, unknown repo, gated repo, bad JSON: all mean "cannot use it"
        raise ModelLoadError(
            f"{repo_id!r} is neither a local folder nor reachable on the Hugging Face Hub "
            f"({type(exc).__name__}: {exc}); the workbench is offline by default: download the "
            "checkpoint where you have a network and pass its local folder."
        ) from exc
    architecture = _architecture(config, f"{repo_id}/config.json")
    return _load(repo_id, architecture, dtype, vision, device, local_files_only=False, where=repo_id)


def _load(
    source: str, architecture: str, dtype: torch.dtype, vision: bool, device: torch.device, *,
    local_files_only: bool, where: str
) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """from_pretrained for model and tokenizer, errors wrapped in ModelLoadError."""
    model_class = getattr(transformers, architecture)
    try:
        model = model_class.from_pretrained(
            source, dtype=dtype, use_safetensors=True, local_files_only=local_files_only
        )
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            f"Loading the weights of {where} failed ({type(exc).__name__}: {exc}); a weights file is "
            "truncated or corrupt, or does not match config.json: copy the complete checkpoint again."
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(
            f"Loading the tokenizer of {where} failed ({type(exc).__name__}: {exc}); copy tokenizer.json "
            "and tokenizer_config.json from the original checkpoint."
        ) from exc
    if architecture == "Glm4vForConditionalGeneration" and not vision:
        model.model.visual = _VisionTowerDropped()
    if device.type != "cpu":
        try:
            model = model.to(device)
        except torch.OutOfMemoryError as exc:
            raise ModelLoadError(
                f"{where} does not fit on {device} in {str(dtype).removeprefix('torch.')} ({exc}); use bfloat16, "
                "a GPU with more memory, or a smaller model") from None
    return model.eval(), tokenizer


class _VisionTowerDropped(nn.Module):
    """Stands in for Glm4v's vision tower, which the workbench drops: the model is text-only."""

    _MESSAGE = (
        "The workbench loads Glm4v checkpoints text-only and dropped the vision tower; "
        "pass input_ids only (no pixel_values), or load the model with transformers directly for images."
    )

    @property
    def dtype(self) -> torch.dtype:
        raise RuntimeError(self._MESSAGE)

    def forward(self, *args, **kwargs):
        raise RuntimeError(self._MESSAGE)
