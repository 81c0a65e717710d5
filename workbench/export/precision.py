"""Which weight precision an export uses, and the PyTorch models it is built from and checked against.

The export quantizes nothing of its own: the recipe's quant section is applied by the workbench's
knob (RTN or GPTQ: the very transform a measured point runs, `recipe_model`), and the graph
builders pack those codes into `MatMulNBits` as they are (`workbench.ort.nbits`). A GPTQ recipe
exports as GPTQ; the parity gate compares ONNX Runtime with the same quantized model.

| recipe quant              | graph weights                                                 |
|---------------------------|---------------------------------------------------------------|
| none                      | float32                                                       |
| bits 16                   | float32 (ONNX Runtime's CPU provider has no bfloat16 MatMul)  |
| bits 8, activations int8  | MatMulNBits 8-bit: torch.ao's int8 codes, one scale per row   |
| bits 8 / 4                | MatMulNBits, block = group size                               |
| bits 3 / 2                | refused: no MatMulNBits CPU kernel of that width              |

Per-channel grids (group 0) are written as blocks of 128 holding the row's scale (the same weights).
`accuracy_level` 4: MatMulNBits quantizes its activations to int8 per block, ~1.9x faster on CPU.
The lm_head stays float32 as in the PyTorch knobs, unless `quantize_lm_head` is set: it is then
quantized by round-to-nearest with the recipe's bits and group (what a deployment wants at large
vocabularies), in the reference too.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import onnx
import torch
from torch import nn

from ..ort.graph import ACCURACY_LEVEL
from ..ort.nbits import PER_CHANNEL_BLOCK

KINDS = ("float32", "int8-dynamic", "int8", "int4")


@dataclass(frozen=True)
class Precision:
    """How the exported weights are stored and run.

    kind: one of KINDS; bits: 32, 8 or 4; block_size: MatMulNBits block (0 if float); symmetric:
    grid; accuracy_level: MatMulNBits compute precision (4 = int8); quantize_lm_head: whether the
    output projection is quantized too; method: what produced the codes ("rtn", "gptq", or "" for
    float); note: what differs from the recipe, if anything.
    """

    kind: str = "float32"
    bits: int = 32
    block_size: int = 0
    symmetric: bool = True
    accuracy_level: int = 0
    quantize_lm_head: bool = False
    method: str = ""
    note: str = ""

    @property
    def quantized(self) -> bool:
        return self.kind != "float32"

    def to_json(self) -> dict:
        return asdict(self)


def precision_of(recipe, *, quantize_lm_head: bool = False) -> Precision:
    """The export precision for a recipe (see the module table).

    Args:
        recipe: a workbench Recipe (its quant section decides; None means float32).
        quantize_lm_head: quantize the output projection too.
    Returns:
        Precision.
    Raises:
        ValueError: bits 3 or 2, naming the widths that export.
    """
    q = getattr(recipe, "quant", None)
    if q is None:
        return Precision()
    method = type(q).__name__.replace("Config", "").lower()
    if q.bits == 16:
        return Precision(note="quant.bits 16 (bfloat16) exports as float32: ONNX Runtime's CPU provider "
                              "has no bfloat16 MatMul")
    if q.bits in (3, 2):
        raise ValueError(f"quant.bits {q.bits} does not export: ONNX Runtime's MatMulNBits has CPU kernels "
                         "for 4 and 8 bits; use quant.bits 4 or 8 in the recipe")
    notes = []
    if quantize_lm_head and method == "gptq":
        notes.append("lm_head quantized by round-to-nearest (the recipe's GPTQ covers the decoder layers)")
    if q.bits == 8 and q.activations == "int8":
        return Precision("int8-dynamic", 8, PER_CHANNEL_BLOCK, q.symmetric, ACCURACY_LEVEL, quantize_lm_head, method,
                         "; ".join(["torch.ao's per-channel int8 codes as MatMulNBits blocks of 128", *notes]))
    block = q.group_size or PER_CHANNEL_BLOCK
    if not q.group_size:
        notes.append(f"group_size 0 (per channel) written as blocks of {PER_CHANNEL_BLOCK} with the row's scale")
    return Precision("int8" if q.bits == 8 else "int4", q.bits, block, q.symmetric, ACCURACY_LEVEL,
                     quantize_lm_head, method, "; ".join(notes))


def recipe_model(model: nn.Module, recipe, precision: Precision, calib=None) -> nn.Module:
    """The model the export writes: the recipe's prune and quant sections applied by the workbench's
    own knobs (a copy), the lm_head quantized too where `precision` says so.

    Args:
        model: the loaded baseline (not mutated).
        recipe: the Recipe.
        precision: its Precision (bits 16 leaves the weights float).
        calib: calibration batches for methods that need them.
    Returns:
        The model (`model` itself when the recipe changes no weights).
    """
    from ..quant import RTNConfig, quantize_
    from ..recipe import Recipe, apply_recipe

    quant = recipe.quant if precision.quantized else None
    if recipe.prune is None and quant is None:
        return model
    new, _ = apply_recipe(model, Recipe(prune=recipe.prune, quant=quant), calib=calib)
    if precision.quantize_lm_head and type(new.lm_head) is nn.Linear:
        if _tied(new):  # untie: quantizing lm_head must not touch the embedding
            new.lm_head.weight = nn.Parameter(new.lm_head.weight.detach().clone(), requires_grad=False)
        group = 0 if precision.kind == "int8-dynamic" else precision.block_size
        if group and new.lm_head.in_features % group:
            group = 0
        quantize_(new, RTNConfig(bits=precision.bits, group_size=group, symmetric=precision.symmetric),
                  filter_fn=lambda m, name: name == "lm_head")
    return new.eval()


def dequantized(model: nn.Module) -> nn.Module:
    """A copy whose quantized layers are float Linears holding their dequantized weights.

    The same function as the quantized model (its layers dequantize, then multiply), without the
    per-call unpacking: what the dynamo exporter reads and the parity gate runs as the reference.

    Args:
        model: a model with PackedLinear or torch.ao W8A8 layers (or none: returned as is).
    Returns:
        `model` itself when nothing is quantized, else a copy.
    """
    from ..ort.nbits import codes_of, is_quantized

    quantized = [name for name, m in model.named_modules() if is_quantized(m)]
    if not quantized:
        return model
    ref = copy.deepcopy(model)
    for name in quantized:
        m = ref.get_submodule(name)
        c = codes_of(m)
        q = torch.from_numpy(c.q.astype("float32")).view(c.shape[0], -1, c.group_size)
        w = ((q - torch.from_numpy(c.zero.astype("float32"))[..., None]) * torch.from_numpy(c.scale)[..., None])
        lin = nn.Linear(c.shape[1], c.shape[0], bias=c.bias is not None)
        lin.weight = nn.Parameter(w.reshape(c.shape).contiguous(), requires_grad=False)
        if c.bias is not None:
            lin.bias = nn.Parameter(torch.from_numpy(c.bias).clone(), requires_grad=False)
        ref.set_submodule(name, lin)
    return ref.eval()


def _tied(model: nn.Module) -> bool:
    head, emb = getattr(model, "lm_head", None), model.get_input_embeddings()
    return head is not None and emb is not None and head.weight is emb.weight


def pack_plain(path: str, model: nn.Module, precision: Precision, within: tuple[str, ...] = ("",)) -> int:
    """Swap the weight MatMuls of an exported plain graph for MatMulNBits holding `model`'s own codes.

    The plain graph is exported from `dequantized(model)`; its MatMul nodes are named after their
    modules (`wrapper.tidy`), which is how each finds its layer's codes.

    Args:
        path: the plain model.onnx (rewritten in place; external data kept external).
        model: the quantized model whose codes are packed.
        precision: the export precision (its accuracy_level).
        within: pack only the layers whose names start with one of these (a vision-language model's graphs:
            text ("model.language_model.", "lm_head"), vision ("model.visual.",)).
    Returns:
        How many MatMuls were replaced.
    Raises:
        ValueError: a quantized layer whose MatMul is not in the graph.
    """
    import os

    from onnx import helper, numpy_helper

    from ..ort.nbits import codes_of, is_quantized, to_nbits

    layers = {name: m for name, m in model.named_modules() if is_quantized(m) and name.startswith(tuple(within))}
    large = os.path.exists(path + ".data")
    proto = onnx.load(path)
    g = proto.graph
    by_name = {n.name: n for n in g.node if n.op_type == "MatMul"}
    missing = [name for name in layers if name not in by_name]
    if missing:
        raise ValueError(f"the plain graph has no MatMul named {missing[0]!r}: cannot pack its codes")
    for name, module in layers.items():
        node = by_name[name]
        w = to_nbits(codes_of(module))
        inits = [numpy_helper.from_array(w.B, f"{name}.qweight"), numpy_helper.from_array(w.scales, f"{name}.scales")]
        if w.zero_points is not None:
            inits.append(numpy_helper.from_array(w.zero_points, f"{name}.qzeros"))
        g.initializer.extend(inits)
        new = helper.make_node("MatMulNBits", [node.input[0], *(t.name for t in inits)], list(node.output), name=name,
                               domain="com.microsoft", K=w.K, N=w.N, bits=w.bits, block_size=w.block_size,
                               accuracy_level=precision.accuracy_level)
        g.node.insert(list(g.node).index(node), new)
        g.node.remove(node)
    _drop_unused(g)
    if not any(op.domain == "com.microsoft" for op in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    for leftover in (path, path + ".data"):
        if os.path.exists(leftover):
            os.remove(leftover)
    onnx.save_model(proto, path, save_as_external_data=large, all_tensors_to_one_file=True,
                    location=os.path.basename(path) + ".data", size_threshold=1024)
    return len(layers)


def _drop_unused(graph) -> None:
    """Remove initializers and nodes (e.g. a tied weight's Transpose) that nothing reads any more."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)
