"""The deployable folder: atomic writes, file hashes, genai_config.json, tokenizer files, manifest.

Layout of an export folder:
    model.onnx (+ model.onnx.data when large)  the decoder with KV cache
    tokenizer.json, tokenizer_config.json      the tokenizer (as save_pretrained writes it)
    genai_config.json                          what onnxruntime-genai needs to load and generate
    manifest.json                              recipe, source fingerprint, versions, metrics, parity,
                                               sha256 of every other file

Writes are atomic: everything goes to a temporary folder beside DIR that is moved into place with
``os.replace`` at the end; on failure it is deleted and DIR is left as it was.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import onnx

MANIFEST = "manifest.json"
MODEL = "model.onnx"
FORMAT = "autoglm-workbench-onnx/1"
_LOAD_KEYS = ("is_local", "local_files_only", "name_or_path", "_commit_hash")


class ExportError(ValueError):
    """An export or verify cannot proceed; the message names the problem and the fix."""


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty DIR unless `overwrite`, and a DIR that is a file.

    Raises:
        ExportError
    """
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is a file; pass a folder path for --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    if not out.parent.exists():
        raise ExportError(f"the parent folder {out.parent} does not exist; create it first")


@contextlib.contextmanager
def staging(out: Path):
    """A temporary folder next to `out` (same filesystem, so the final move is atomic); removed on exit.

    Yields:
        Path of the temporary folder.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_into_place(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp` (an existing `out` folder is moved aside first, then deleted)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 16 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """name -> sha256 of every file in `folder` except the manifest (sorted by name)."""
    return {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}


def write_tokenizer(tokenizer, folder: Path) -> list[str]:
    """Save the tokenizer files (tokenizer.json and tokenizer_config.json at least).

    Returns:
        Names of the files written.
    """
    before = set(os.listdir(folder))
    tokenizer.save_pretrained(str(folder))
    written = sorted(set(os.listdir(folder)) - before)
    if "tokenizer.json" not in written:
        raise ExportError("the tokenizer has no fast (tokenizer.json) form; onnxruntime-genai needs one: "
                          "load the checkpoint with a tokenizer.json")
    config = folder / "tokenizer_config.json"
    if config.is_file():  # drop how it was loaded here (local paths and flags), keep what it is
        data = json.loads(config.read_text(encoding="utf-8"))
        for key in _LOAD_KEYS:
            data.pop(key, None)
        write_json(config, data)
    return written


def genai_config(shape, tokenizer, *, context_length: int, filename: str = MODEL, share_buffer: bool = False) -> dict:
    """The genai_config.json that lets onnxruntime-genai load the folder and generate greedily.

    onnxruntime-genai has no GLM-4 model type; "chatglm" is the decoder-only type whose inputs match
    ours (input_ids, attention_mask, position_ids, past_key_values.%d.key/value). The plain graph
    concatenates, so its past and present are separate buffers; the fused graph's GroupQueryAttention
    updates one buffer of the context's length in place (past_present_share_buffer true).

    Args:
        shape: the DecoderShape of the exported graph.
        tokenizer: for eos / pad ids.
        context_length: max positions (the model's max_position_embeddings).
        filename: the decoder file.
        share_buffer: the graph updates a shared past/present buffer in place (the fused graph).
    Returns:
        The config dict.
    """
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    return {
        "model": {
            "bos_token_id": bos,
            "context_length": context_length,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": filename,
                "head_size": shape.head_dim,
                "hidden_size": shape.hidden_size,
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "position_ids": "position_ids", "past_key_names": "past_key_values.%d.key",
                           "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
                "num_attention_heads": shape.num_heads,
                "num_hidden_layers": shape.num_layers,
                "num_key_value_heads": shape.num_kv_heads,
            },
            "eos_token_id": eos,
            "pad_token_id": pad,
            "type": "chatglm",
            "vocab_size": shape.vocab_size,
        },
        "search": {"diversity_penalty": 0.0, "do_sample": False, "early_stopping": True, "length_penalty": 1.0,
                   "max_length": context_length, "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
                   "num_return_sequences": 1, "past_present_share_buffer": share_buffer, "repetition_penalty": 1.0,
                   "temperature": 1.0, "top_k": 1, "top_p": 1.0},
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> dict:
    """The manifest of an export folder.

    Raises:
        ExportError: folder or manifest missing or unreadable, naming the fix.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder} is not an export folder (not found); export one with "
                          "`workbench export --recipe FILE.json --out DIR`")
    path = folder / MANIFEST
    if not path.is_file():
        raise ExportError(f"{folder} has no {MANIFEST}, so it is not a workbench export; export it again "
                          "with `workbench export`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON ({exc}); export the folder again") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ExportError(f"{path} is not a workbench export manifest (format {FORMAT!r} expected); "
                          "export the folder again")
    return data


def changed_files(folder: Path, manifest: dict) -> list[str]:
    """Files whose sha256 differs from the manifest's, or that are missing (names, sorted)."""
    recorded = manifest.get("files", {})
    bad = []
    for name, digest in sorted(recorded.items()):
        p = Path(folder) / name
        if not p.is_file() or sha256(p) != digest:
            bad.append(name)
    return bad


def check_model_file(path: str | os.PathLike) -> None:
    """Refuse a missing or corrupt model.onnx with a message naming the fix.

    Args:
        path: the .onnx path.
    Raises:
        ExportError: missing, unreadable or failing onnx.checker.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ExportError(f"{path} not found; export the model with `workbench export --recipe FILE --out DIR`")
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as exc:  # DecodeError, ValidationError, OSError: all mean "not a usable model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{path} is corrupt or not an ONNX model ({type(exc).__name__}: {first[:200]}); "
                         "export the folder again") from None
