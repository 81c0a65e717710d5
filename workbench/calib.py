"""Calibration machinery shared by Wanda, SparseGPT and GPTQ: token batches, hook-fed accumulators,
the damped inverse-Hessian Cholesky factor, and layer-by-layer (sequential) calibration.

Memory of sequential calibration: the model's weights, plus one decoder layer's activations for
all calibration batches at a time: per batch the layer's input hidden states (1, T, hidden) and
the kwargs HF passes every layer (rotary cos/sin (1, T, rot_dim), position ids, and the causal mask:
None with SDPA and no padding, (1, 1, T, T) with eager attention). With 64 prompts of ~1,000 tokens
at hidden 4096 in float32 that is ~1 GiB; add the statistics of the current layer's selected
Linears (a Hessian is (in, in) float32: 0.75 GiB for GLM-4-9B's down_proj, in = 13696) and the
temporary activations of one forward of the layer on one batch.
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Callable, Sequence

import torch
from torch import nn

from .task import DEFAULT_CALIB, load_steps, render_prompt


CALIB_STEPS = 64  # calibration prompts every measured point, evaluate and export use (one home)


def default_calibration(tokenizer, episodes=None, n: int = CALIB_STEPS, processor=None) -> list:
    """The calibration batches the workbench uses unless told otherwise: the first `n` steps of
    data/episodes/calib.jsonl (or of `episodes`), so a point and its export see the same data.
    With a vision-language model's `processor`, the steps' screenshots in the open-autoglm prompt mode."""
    steps = load_steps(episodes or DEFAULT_CALIB, limit=n)
    if processor is not None:
        return screen_batches(processor, steps)
    return calibration_batches(tokenizer, steps, n=n)


def screen_batches(processor, steps) -> list[dict]:
    """Calibration inputs of a vision-language model: each step's screenshot, its open-autoglm messages
    and its target answer, as the model's keyword tensors (`workbench.model.vision.screen_inputs`)."""
    from .model.vision import screen_inputs
    from .task.open_autoglm import earlier_apps

    apps = earlier_apps(steps)
    return [screen_inputs(processor, s, apps=apps[(s.episode_id, s.step)], with_target=True) for s in steps]


def calibration_batches(tokenizer, steps, n: int | None = None,
                        max_len: int | None = None) -> list[torch.Tensor]:
    """Token batches for calibration: each step's prompt followed by its target action.

    Args:
        tokenizer: the model's tokenizer.
        steps: task Steps, or a path of a JSONL episode file (e.g. data/episodes/calib.jsonl).
        n: use only the first `n` steps (None: all).
        max_len: keep at most the first `max_len` tokens of each sequence (None: all).
    Returns:
        list of (1, T) int64 token-id tensors, one per step.
    """
    if isinstance(steps, (str, os.PathLike)):
        steps = load_steps(steps)
    steps = list(steps)[:n] if n is not None else list(steps)
    batches = []
    for step in steps:
        ids = tokenizer.encode(render_prompt(step) + step.target, add_special_tokens=False)
        batches.append(torch.tensor([ids[:max_len] if max_len else ids], dtype=torch.long))
    return batches


class InputNorm:
    """Per-input-channel sum of squared inputs over all tokens (Wanda's ||X_j||_2)."""

    def __init__(self, in_features: int):
        self.sumsq = torch.zeros(in_features, dtype=torch.float64)  # (in,)
        self.tokens = 0

    def add_batch(self, inp: torch.Tensor, out: torch.Tensor | None = None) -> None:
        """Accumulate one batch of a Linear's inputs.

        Args:
            inp: (..., in) the Linear's input.
            out: (..., out) its output (unused).
        """
        x = inp.detach().reshape(-1, inp.shape[-1]).to(torch.float64)  # (tokens, in)
        self.sumsq = self.sumsq.to(x.device) + x.pow(2).sum(0)
        self.tokens += x.shape[0]

    def norm(self) -> torch.Tensor:
        """(in,) float32 L2 norm of each input channel over all tokens seen."""
        return self.sumsq.sqrt().float()


class Hessian:
    """Running H = 2/n sum_t x_t x_t^T over the n tokens seen (the GPTQ / SparseGPT layer Hessian)."""

    def __init__(self, in_features: int, dtype: torch.dtype = torch.float32):
        self.H = torch.zeros(in_features, in_features, dtype=dtype)  # (in, in)
        self.tokens = 0

    def add_batch(self, inp: torch.Tensor, out: torch.Tensor | None = None) -> None:
        """Accumulate one batch of a Linear's inputs.

        Args:
            inp: (..., in) the Linear's input.
            out: (..., out) its output (unused).
        """
        x = inp.detach().reshape(-1, inp.shape[-1]).to(self.H.dtype)  # (t, in)
        t = x.shape[0]
        if t == 0:
            return
        self.H = self.H.to(x.device)
        self.H *= self.tokens / (self.tokens + t)
        self.tokens += t
        x = x * math.sqrt(2.0 / self.tokens)
        self.H += x.T @ x


def inverse_cholesky(H: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper Cholesky factor of the damped inverse Hessian, as GPTQ and SparseGPT use it.

    Dead inputs (diag(H) == 0, a channel that was always zero) get H_jj = 1 so H stays invertible;
    the caller should zero their weight columns (they never contribute to the output). Damping adds
    `damp * mean(diag(H))` to the diagonal; if the factorisation still fails the damping is raised
    tenfold up to 3 times.

    Args:
        H: (in, in) layer Hessian (not modified).
        damp: relative diagonal damping (fraction of the mean diagonal).
    Returns:
        (U, dead): U (in, in) float32 upper triangular with U^T U = (H + damp I)^-1;
        dead (in,) bool mask of dead inputs.
    """
    H = H.detach().clone().to(torch.float64 if H.dtype == torch.float64 else torch.float32)
    dead = torch.diag(H) == 0  # (in,)
    H[dead, dead] = 1.0
    idx = torch.arange(H.shape[0], device=H.device)
    base = torch.diag(H).mean()
    for attempt in range(4):
        Hd = H.clone()
        Hd[idx, idx] += damp * (10 ** attempt) * base
        L, info = torch.linalg.cholesky_ex(Hd)
        if info == 0:
            Hinv = torch.cholesky_inverse(L)
            U, info = torch.linalg.cholesky_ex(Hinv, upper=True)
            if info == 0:
                return U.float(), dead
    raise ValueError(f"inverse_cholesky: Hessian is not positive definite even with damp={damp * 1000}")


class _Caught(Exception):
    """Raised by the catcher once the first decoder layer's inputs are recorded."""


class _Catcher(nn.Module):
    """Stands in for the first decoder layer: records its args/kwargs, then stops the forward."""

    def __init__(self, layer: nn.Module, store: list):
        super().__init__()
        self.layer = layer
        self.store = store

    def __getattr__(self, name):  # models may read attributes of a layer (e.g. attention_type)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.layer, name)

    def forward(self, *args, **kwargs):
        self.store.append((list(args), dict(kwargs)))
        raise _Caught


def model_inputs(batch, device) -> dict:
    """A calibration batch as forward keywords: token ids (1, T), or a vision-language step's tensors."""
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    return {"input_ids": batch.to(device)}


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of decoder layers (HF `get_decoder().layers`, else the longest `*.layers` list).

    Args:
        model: HF causal LM (or its language model).
    Returns:
        the nn.ModuleList holding the decoder layers.
    """
    get = getattr(model, "get_decoder", None)
    if get is not None:
        layers = getattr(get(), "layers", None)
        if isinstance(layers, nn.ModuleList):
            return layers
    lists = [m for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and n.endswith("layers")]
    if not lists:
        raise ValueError(f"{type(model).__name__}: no decoder layer list found")
    return max(lists, key=len)


def _with_hidden(args: list, kwargs: dict, h: torch.Tensor) -> tuple[list, dict]:
    if args:
        return [h, *args[1:]], kwargs
    return args, {**kwargs, "hidden_states": h}


def _run(layer: nn.Module, args: list, kwargs: dict) -> torch.Tensor:
    out = layer(*args, **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out  # (1, T, hidden)


@torch.no_grad()
def sequential(model: nn.Module, batches: Sequence[torch.Tensor], filter_fn: Callable[[nn.Module, str], bool],
               make_stats: Callable[[str, nn.Module], object],
               process: Callable[[str, nn.Module, object], None]) -> list[str]:
    """Layer-by-layer calibration: collect statistics of each decoder layer's selected Linears on
    that layer's real inputs, let `process` modify the layer, then feed the next layer the outputs
    of the modified layer (as GPTQ does).

    Args:
        model: HF causal LM; modified only by `process`.
        batches: calibration token batches, each (1, T) (or (B, T)) int64.
        filter_fn: `filter_fn(module, full_name)` picks the Linears (names as in model.named_modules()).
        make_stats: `make_stats(name, module)` -> accumulator with `add_batch(inp, out)`.
        process: `process(name, module, stats)`, called once per selected Linear after its layer
            was run on every batch; this is where pruning / quantization of the layer happens.
    Returns:
        full names of the processed Linears, in model order. Selected modules outside the decoder
        layers are not processed (a warning names them).
    """
    if not batches:
        raise ValueError("sequential calibration needs at least one batch")
    layers = decoder_layers(model)
    full = {id(m): n for n, m in model.named_modules()}
    selected = {n for n, m in model.named_modules() if filter_fn(m, n)}
    inside = {f"{full[id(layer)]}.{n}" for layer in layers for n, _ in layer.named_modules() if n}
    outside = sorted(selected - inside)
    if any(".visual." in f".{n}" for n in outside):
        raise ValueError("layer-by-layer calibration covers the language model's decoder layers, not the vision "
                         f"tower ({outside[0]}, ...): use scope 'language' with this method, or method 'rtn' "
                         "(or 'magnitude') for scope 'all'")
    if selected - inside:
        warnings.warn("sequential: selected modules outside the decoder layers are not processed: "
                      f"{sorted(selected - inside)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    inputs: list = []  # per batch: (args, kwargs) of the first layer; args[0] (1, T, hidden)
    first = layers[0]
    layers[0] = _Catcher(first, inputs)
    try:
        for batch in batches:  # token ids (1, T), or a vision-language step's keyword tensors
            kwargs = model_inputs(batch, device)
            try:
                model(**kwargs, use_cache=False)
            except _Caught:
                pass
    finally:
        layers[0] = first
        model.train(was_training)
    if len(inputs) != len(batches):
        raise RuntimeError("sequential: the first decoder layer was not reached by every batch")
    for args, kwargs in inputs:  # no KV cache while calibrating
        kwargs.pop("past_key_values", None)
        if "use_cache" in kwargs:
            kwargs["use_cache"] = False

    done: list[str] = []
    try:
        model.eval()
        for index, layer in enumerate(layers):
            prefix = full[id(layer)]
            chosen = {f"{prefix}.{n}": m for n, m in layer.named_modules()
                      if n and f"{prefix}.{n}" in selected}
            stats = {name: make_stats(name, m) for name, m in chosen.items()}
            handles = []
            try:
                for name, m in chosen.items():
                    handles.append(m.register_forward_hook(
                        lambda mod, inp, out, s=stats[name]: s.add_batch(inp[0].detach(), out.detach())))
                for args, kwargs in inputs if chosen else ():  # stats pass (skipped if nothing chosen)
                    _run(layer, args, kwargs)
            finally:
                for h in handles:
                    h.remove()
            for name, m in chosen.items():
                process(name, m, stats[name])
                done.append(name)
            del stats
            if index + 1 < len(layers):  # the modified layer's outputs are the next layer's inputs
                inputs = [_with_hidden(args, kwargs, _run(layer, args, kwargs)) for args, kwargs in inputs]
    finally:
        model.train(was_training)
    return done


__all__ = ["Hessian", "InputNorm", "calibration_batches", "decoder_layers", "inverse_cholesky", "model_inputs",
           "screen_batches", "sequential"]
