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

from dataclasses import asdict, dataclass

from torch import nn

from ..ort.graph import ACCURACY_LEVEL
from ..ort.nbits import PER_CHANNEL_BLOCK
from ..ort.pack import dequantized, pack_plain  # noqa: F401 - where the export and its gate take them

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


def _tied(model: nn.Module) -> bool:
    head, emb = getattr(model, "lm_head", None), model.get_input_embeddings()
    return head is not None and emb is not None and head.weight is emb.weight
