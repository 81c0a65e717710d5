"""Provenance of a measurement: library versions, machine, model fingerprint, data hash, recipe."""
from __future__ import annotations

import hashlib
import os
import platform
import sys
from datetime import datetime, timezone

import torch

SAMPLE = 4096  # values hashed from each end of each tensor


def model_fingerprint(model: torch.nn.Module) -> str:
    """A stable short id of a model's weights.

    Hashes the config and, for every tensor of the state dict, its name, shape, dtype and its first
    and last SAMPLE values: exact for the tiny model and cheap for a 9B one (no full 18 GB pass).
    """
    h = hashlib.sha256()
    cfg = getattr(model, "config", None)
    if cfg is not None:
        h.update(cfg.to_json_string(use_diff=False).encode())
    for name, t in model.state_dict().items():
        flat = t.detach().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        for part in (flat[:SAMPLE], flat[-SAMPLE:]):
            h.update(part.contiguous().view(torch.uint8).numpy().tobytes() if part.numel() else b"")
    return h.hexdigest()[:16]


def versions() -> dict:
    """Versions of the libraries that shape a measurement."""
    import onnxruntime
    import transformers

    from .. import __version__
    return {"workbench": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__}


# the instruction sets that pick the CPU kernels of ONNX Runtime, llama.cpp and PyTorch
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu() -> dict:
    """The CPU by name and the kernel-picking instruction sets it has (Linux: /proc/cpuinfo; else the platform's)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return {"cpu": platform.processor() or platform.machine(), "cpu_flags": []}
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"cpu": fields.get("model name", platform.machine()), "cpu_flags": [f for f in CPU_FLAGS if f in flags]}


def machine() -> dict:
    """What machine measured it (the CPU named: kernels and figures differ from one CPU to the next)."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), **cpu()}


def provenance(model, model_source: str, episodes_path: str, episodes_hash: str, recipe=None) -> dict:
    """The report's `provenance` object."""
    return {"versions": versions(), "machine": machine(), "model": model_source,
            "model_fingerprint": model_fingerprint(model), "episodes": episodes_path,
            "episodes_sha256": episodes_hash, "recipe": recipe,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
