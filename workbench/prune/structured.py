"""Structured pruning: remove whole MLP channels or attention heads, so layers become smaller dense layers.

Unlike magnitude / Wanda / SparseGPT masks, the removed rows and columns are cut out of the
weight matrices and `model.config` is updated, so the pruned model is really smaller and faster,
saves with `save_pretrained`, reloads with `from_pretrained` (or `workbench.model.load_model`
once the tokenizer is saved alongside) and exports to ONNX as an ordinary dense model.

How blocks are found (no hard-coded attribute paths): by walking `model.named_modules()`:
- an MLP block is a module with Linear children `gate_up_proj` (fused: out = 2*I, gate rows
  [0, I), up rows [I, 2I), as in GLM / GLM-4 / GLM-4.1V) and `down_proj` (in = I); it is pruned
  when `filter_fn` selects both Linears;
- an attention block is a module with Linear children `q_proj`, `k_proj`, `v_proj`, `o_proj`
  and a `head_dim` attribute (transformers' Glm/Glm4/Glm4v attention); it is pruned when
  `filter_fn` selects `q_proj` and `o_proj`.
The config holds one `intermediate_size` and one `num_attention_heads` for all layers, so either
every block of a kind is selected or none: a partial selection is refused.

Importance ("magnitude" needs no data; "wanda" uses calibration activations and falls back to
"magnitude" when `calib` is None; the report says which was used):
- MLP channel j: magnitude ||W_down[:, j]|| * (||W_gate[j]|| + ||W_up[j]||);
  wanda ||X_j|| * ||W_down[:, j]||, X_j = down_proj input j over all calibration tokens.
- query head h (columns C_h of o_proj): magnitude ||W_q[h]||_F * ||W_o[:, C_h]||_F;
  wanda sqrt(sum_{j in C_h} ||X_j||^2 * ||W_o[:, j]||^2), X = o_proj input.
Statistics for all blocks are collected in one calibration pass on the unpruned model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..calib import InputNorm, model_inputs
from ..select import default_filter
from .base import check_ratio, prune_
from .counts import kept_channels, kept_heads_per_group

IMPORTANCES = ("magnitude", "wanda")
_ATTENTION_CHILDREN = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class _StructuredConfig:
    """What the structured configs share: a ratio in 0..0.9 and an importance score (IMPORTANCES)."""

    ratio: float
    importance: str
    scope: str = "language"  # structured pruning keeps to the language model

    def __post_init__(self):
        check_ratio(self.ratio)
        if self.scope != "language":
            raise ValueError(f"prune.scope must be 'language' for structured pruning (heads and channels are counted "
                             f"per decoder layer; the vision tower is not pruned that way), got {self.scope!r}")
        if self.importance not in IMPORTANCES:
            raise ValueError(f"prune.importance must be one of {', '.join(IMPORTANCES)}, got {self.importance!r}")


@dataclass(frozen=True)
class ChannelsConfig(_StructuredConfig):
    """Remove MLP intermediate channels, the same number in every decoder layer.

    Args:
        ratio: fraction of intermediate channels removed, 0..0.9; the kept count is
            I * (1 - ratio) rounded to the nearest multiple of 8 (see `kept_channels`).
        importance: "wanda" (calibration activations; magnitude without calib) or "magnitude".
    """

    ratio: float = 0.3
    importance: str = "wanda"


@dataclass(frozen=True)
class HeadsConfig(_StructuredConfig):
    """Remove query heads, the same number inside every KV group of every attention block.

    Args:
        ratio: fraction of the query heads of each KV group removed, 0..0.9 (rounded to whole
            heads per group; at least one head per group must stay).
        importance: "magnitude" or "wanda" (calibration activations; magnitude without calib).
    """

    ratio: float = 0.25
    importance: str = "magnitude"


@dataclass(frozen=True)
class StructuredReport:
    """What a structured transform removed.

    unit: "channels" (MLP intermediate) or "heads" (query heads); before / after: that count per
    block; importance: the score actually used; kept: block name -> kept channel / head indices
    (into the unpruned block, ascending); params_before / params_after: model parameters.
    """

    unit: str
    before: int
    after: int
    importance: str
    params_before: int
    params_after: int
    kept: dict = field(default_factory=dict)

    @property
    def blocks(self) -> tuple[str, ...]:
        return tuple(self.kept)


# ---- finding blocks -------------------------------------------------------------------------

def _join(prefix: str, child: str) -> str:
    return f"{prefix}.{child}" if prefix else child


def _blocks(model: nn.Module, children: tuple[str, ...], sliced: tuple[str, ...], filter_fn, what: str):
    """name -> module for modules with Linear `children`, all selected or none (else ValueError)."""
    found, skipped = {}, []
    for name, m in model.named_modules():
        if all(isinstance(m._modules.get(c), nn.Linear) for c in children):
            if all(filter_fn(m._modules[c], _join(name, c)) for c in sliced):
                found[name] = m
            else:
                skipped.append(name)
    if not found:
        raise ValueError(f"prune: no {what} block among the layers filter_fn selects "
                         f"(looked for modules with Linear children {', '.join(children)})")
    if skipped:
        raise ValueError(f"prune: structured {what} pruning must cover every {what} block, since the model "
                         f"config holds one size for all layers; filter_fn selected {len(found)} of "
                         f"{len(found) + len(skipped)} (not: {', '.join(skipped[:3])})")
    return found


def _configs(model: nn.Module, blocks) -> list:
    """Distinct config objects to update: the model's (text) config and any a block holds."""
    cfgs = {}
    root = getattr(model, "config", None)
    if root is not None:
        text = root.get_text_config() if hasattr(root, "get_text_config") else root
        cfgs[id(text)] = text
    for m in blocks:
        c = getattr(m, "config", None)
        if c is not None:
            cfgs[id(c)] = c
    return list(cfgs.values())


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- calibration statistics ---------------------------------------------------------------

@torch.no_grad()
def _input_norms(model: nn.Module, linears: dict[str, nn.Linear], calib) -> dict[str, torch.Tensor]:
    """name -> (in,) input activation norms ||X_j|| of each Linear over the calibration batches.

    One forward pass per batch through the unpruned model; hooks feed `InputNorm` accumulators and
    are removed (and the train/eval mode restored) in `finally`.

    Args:
        calib: iterable of (B, T) token id tensors (a single tensor counts as one batch).
    """
    if isinstance(calib, torch.Tensor):
        calib = [calib]
    device = next(model.parameters()).device
    accs = {n: InputNorm(lin.in_features) for n, lin in linears.items()}
    handles, was_training = [], model.training
    try:
        model.eval()
        for n, lin in linears.items():
            handles.append(lin.register_forward_hook(
                lambda mod, args, out, acc=accs[n]: acc.add_batch(args[0], out)))
        for ids in calib:
            model(**model_inputs(ids, device), use_cache=False, logits_to_keep=1)  # no (T, V) logits
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {n: a.norm() for n, a in accs.items()}


def _importance(config, calib) -> str:
    """The importance actually used: "wanda" only when asked for and calibration data is given."""
    if config.importance != "wanda" or calib is None:
        return "magnitude"
    if isinstance(calib, (list, tuple)) and not calib:
        return "magnitude"
    return "wanda"


# ---- slicing ------------------------------------------------------------------------------

@torch.no_grad()
def _slice_linear_(lin: nn.Linear, dim: int, idx: torch.Tensor) -> None:
    """Keep only rows (dim 0: outputs, with the bias) or columns (dim 1: inputs) `idx`, in place."""
    idx = idx.to(lin.weight.device)
    lin.weight = nn.Parameter(lin.weight.index_select(dim, idx).contiguous(),
                              requires_grad=lin.weight.requires_grad)
    if dim == 0:
        if lin.bias is not None:
            lin.bias = nn.Parameter(lin.bias.index_select(0, idx).contiguous(),
                                    requires_grad=lin.bias.requires_grad)
        lin.out_features = len(idx)
    else:
        lin.in_features = len(idx)


# ---- MLP channels -------------------------------------------------------------------------

def _channel_scores(mlp: nn.Module, act_norm: torch.Tensor | None) -> torch.Tensor:
    """(I,) importance of each intermediate channel (see the module docstring)."""
    i = mlp.down_proj.in_features
    down = mlp.down_proj.weight.float().norm(dim=0)  # W_down (H, I) -> (I,)
    if act_norm is not None:
        return act_norm.to(down.device) * down
    gu = mlp.gate_up_proj.weight.float()  # (2I, H): gate rows [0, I), up rows [I, 2I)
    return down * (gu[:i].norm(dim=1) + gu[i:].norm(dim=1))


@prune_.register(ChannelsConfig)
@torch.no_grad()
def prune_channels(model: nn.Module, config: ChannelsConfig, *, calib=None,
                   filter_fn=default_filter) -> StructuredReport:
    """Cut the least important MLP intermediate channels out of every MLP block, in place.

    gate_up_proj keeps rows idx (gate) and I + idx (up); down_proj keeps columns idx;
    `config.intermediate_size` becomes the kept count.

    Args:
        model: the model to prune (mutated: smaller Linears, updated config).
        config: ChannelsConfig.
        calib: calibration token batches (list of (1, T) tensors) for importance "wanda".
        filter_fn: must select the gate_up_proj and down_proj of every MLP block.
    Returns:
        StructuredReport (unit "channels").
    """
    mlps = _blocks(model, ("gate_up_proj", "down_proj"), ("gate_up_proj", "down_proj"), filter_fn, "MLP")
    sizes = {m.down_proj.in_features for m in mlps.values()}
    bad = [n for n, m in mlps.items() if m.gate_up_proj.out_features != 2 * m.down_proj.in_features]
    if len(sizes) != 1 or bad:
        raise ValueError(f"prune: channels pruning needs fused MLPs of one size (gate_up_proj out = 2 x "
                         f"down_proj in); found sizes {sorted(sizes)}, mismatched {bad[:3]}")
    n = sizes.pop()
    k = kept_channels(n, config.ratio)
    used = _importance(config, calib)
    norms = (_input_norms(model, {name: m.down_proj for name, m in mlps.items()}, calib)
             if used == "wanda" else {})
    params_before, kept = _n_params(model), {}
    for name, mlp in mlps.items():
        idx = _channel_scores(mlp, norms.get(name)).topk(k).indices.sort().values  # (k,)
        if k < n:
            _slice_linear_(mlp.gate_up_proj, 0, torch.cat([idx, idx + n]))  # (2k, H)
            _slice_linear_(mlp.down_proj, 1, idx)  # (H, k)
        kept[name] = tuple(idx.tolist())
    for cfg in _configs(model, mlps.values()):
        cfg.intermediate_size = k
    return StructuredReport("channels", n, k, used, params_before, _n_params(model), kept)


# ---- attention heads ----------------------------------------------------------------------

def _head_layout(attn: nn.Module, name: str) -> tuple[int, int, int]:
    """(head_dim, query heads, KV heads) of an attention block, checked."""
    hd = getattr(attn, "head_dim", None)
    q, k, o = attn.q_proj, attn.k_proj, attn.o_proj
    if not isinstance(hd, int) or q.out_features % hd or k.out_features % hd or o.in_features != q.out_features:
        raise ValueError(f"prune: {name} is not a recognised attention block (head_dim {hd!r}, q_proj out "
                         f"{q.out_features}, k_proj out {k.out_features}, o_proj in {o.in_features})")
    n_q, n_kv = q.out_features // hd, k.out_features // hd
    if n_q % n_kv:
        raise ValueError(f"prune: {name} has {n_q} query heads, not a multiple of its {n_kv} KV heads")
    return hd, n_q, n_kv


def _head_scores(attn: nn.Module, hd: int, n_q: int, act_norm: torch.Tensor | None) -> torch.Tensor:
    """(n_q,) importance of each query head (see the module docstring)."""
    wo = attn.o_proj.weight.float()  # (H, n_q * hd)
    col_sq = wo.pow(2).sum(0).reshape(n_q, hd)  # ||W_o[:, j]||^2 per head column
    if act_norm is not None:
        return (act_norm.to(col_sq.device).reshape(n_q, hd).pow(2) * col_sq).sum(-1).sqrt()
    wq = attn.q_proj.weight.float().reshape(n_q, hd, -1)  # (n_q, hd, H)
    return wq.pow(2).sum((1, 2)).sqrt() * col_sq.sum(-1).sqrt()


@prune_.register(HeadsConfig)
@torch.no_grad()
def prune_heads(model: nn.Module, config: HeadsConfig, *, calib=None,
                filter_fn=default_filter) -> StructuredReport:
    """Cut the least important query heads out of every attention block, in place (GQA-aware).

    Query head h uses KV head h // G (G = heads per KV group, as transformers' repeat_kv lays them
    out), so the same number of heads is removed inside every group and K / V stay untouched:
    q_proj keeps the rows (and bias) of the kept heads, o_proj the same columns; each block's
    `num_key_value_groups` and `config.num_attention_heads` are updated (`config.head_dim` kept
    explicit), so the model runs in memory and reloads from a saved folder.

    Args:
        model: the model to prune (mutated).
        config: HeadsConfig.
        calib: calibration token batches (list of (1, T) tensors) for importance "wanda".
        filter_fn: must select q_proj and o_proj of every attention block.
    Returns:
        StructuredReport (unit "heads": query heads per block before / after).
    Raises:
        ValueError: the ratio would leave no query head in a KV group, or blocks differ in shape.
    """
    attns = _blocks(model, _ATTENTION_CHILDREN, ("q_proj", "o_proj"), filter_fn, "attention")
    layouts = {_head_layout(m, n) for n, m in attns.items()}
    if len(layouts) != 1:
        raise ValueError(f"prune: heads pruning needs attention blocks of one shape, found {sorted(layouts)}")
    hd, n_q, n_kv = layouts.pop()
    group = n_q // n_kv
    keep_g = kept_heads_per_group(group, config.ratio)
    used = _importance(config, calib)
    norms = (_input_norms(model, {name: m.o_proj for name, m in attns.items()}, calib)
             if used == "wanda" else {})
    params_before, kept = _n_params(model), {}
    for name, attn in attns.items():
        scores = _head_scores(attn, hd, n_q, norms.get(name)).reshape(n_kv, group)  # (n_kv, G)
        local = scores.topk(keep_g, dim=1).indices.sort(dim=1).values  # (n_kv, G')
        heads = (local + torch.arange(n_kv, device=local.device)[:, None] * group).flatten()  # (n_kv*G',)
        if keep_g < group:
            rows = (heads[:, None] * hd + torch.arange(hd, device=heads.device)).flatten()  # (n_kv*G'*hd,)
            _slice_linear_(attn.q_proj, 0, rows)
            _slice_linear_(attn.o_proj, 1, rows)
            attn.num_key_value_groups = keep_g
            for attr in ("num_heads", "num_attention_heads"):  # other attention classes keep these
                if isinstance(getattr(attn, attr, None), int):
                    setattr(attn, attr, n_kv * keep_g)
        kept[name] = tuple(heads.tolist())
    for cfg in _configs(model, attns.values()):
        cfg.num_attention_heads = n_kv * keep_g
        cfg.head_dim = hd  # hidden_size // heads no longer gives it
    return StructuredReport("heads", n_q, n_kv * keep_g, used, params_before, _n_params(model), kept)


__all__ = ["ChannelsConfig", "HeadsConfig", "IMPORTANCES", "StructuredReport",
           "prune_channels", "prune_heads"]
