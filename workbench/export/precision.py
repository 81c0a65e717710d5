"""Which weight precision an export uses, from the recipe's quant section, and the PyTorch
quantization the parity gate compares it with.

| recipe quant                         | ONNX Runtime                                   | PyTorch reference        |
|--------------------------------------|------------------------------------------------|--------------------------|
| none                                 | float32                                        | the float model          |
| bits 16                              | float32 (no bfloat16 MatMul on ORT's CPU EP)   | the float model          |
| bits 8, activations int8             | `quantize_dynamic` QInt8 (W8A8, per tensor)    | RTN W8A8 (torch.ao)      |
| bits 8, activations none             | MatMulNBits bits 8, block = group_size         | RTN 8-bit, same groups   |
| bits 4                               | MatMulNBits bits 4, block = group_size         | RTN 4-bit, same groups   |
| bits 3 / 2                           | refused: no MatMulNBits CPU kernel of that width |                        |

`group_size` 0 (per output channel) becomes block 128 (MatMulNBits needs a power of two >= 16) and
the reference uses group 128 too. `method` gptq is exported as round-to-nearest by ONNX Runtime's
quantizer (its GPTQ needs a calibration reader and an extra package); the manifest says so.
`accuracy_level` 4 (int8 compute of the activations) is ~1.9x faster than float compute on CPU.
The lm_head stays float32 as in the PyTorch knobs, unless `quantize_lm_head` is set (what a
deployment wants at large vocabularies; the reference then quantizes it the same way).
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import asdict, dataclass

import onnx
import torch
from torch import nn

KINDS = ("float32", "int8-dynamic", "int8", "int4")
ACCURACY_LEVEL = 4
PER_CHANNEL_BLOCK = 128


@dataclass(frozen=True)
class Precision:
    """How the exported weights are stored and run.

    kind: one of KINDS; bits: 32, 8 or 4; block_size: MatMulNBits block (0 if not MatMulNBits);
    symmetric: grid; accuracy_level: MatMulNBits compute precision (4 = int8); quantize_lm_head:
    whether the output projection is quantized too; note: what differs from the recipe, if anything.
    """

    kind: str = "float32"
    bits: int = 32
    block_size: int = 0
    symmetric: bool = True
    accuracy_level: int = 0
    quantize_lm_head: bool = False
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
    note = ("GPTQ is exported as round-to-nearest by ONNX Runtime's quantizer" if method == "gptq" else "")
    if q.bits == 16:
        return Precision(note="quant.bits 16 (bfloat16) exports as float32: ONNX Runtime's CPU provider "
                              "has no bfloat16 MatMul")
    if q.bits in (3, 2):
        raise ValueError(f"quant.bits {q.bits} does not export: ONNX Runtime's MatMulNBits has CPU kernels "
                         "for 4 and 8 bits; use quant.bits 4 or 8 in the recipe")
    if q.bits == 8 and q.activations == "int8":
        return Precision("int8-dynamic", 8, 0, q.symmetric, 0, quantize_lm_head, note)
    block = q.group_size or PER_CHANNEL_BLOCK
    if not q.group_size:
        note = "; ".join(filter(None, [note, f"group_size 0 (per channel) exported as block {PER_CHANNEL_BLOCK}"]))
    return Precision("int8" if q.bits == 8 else "int4", q.bits, block, q.symmetric, ACCURACY_LEVEL,
                     quantize_lm_head, note)


def torch_reference(model: nn.Module, precision: Precision, *, packed: bool = False) -> nn.Module:
    """The PyTorch model with the same quantization as the export (workbench RTN), for the parity gate.

    Args:
        model: the float (pruned) model that was exported; not mutated.
        precision: the export's Precision.
        packed: keep the packed layers PyTorch runs for the recipe (what latency measures). By
            default each PackedLinear is replaced by a float Linear holding its dequantized weight:
            the same function (PackedLinear dequantizes then calls F.linear), without the per-call
            unpacking, so the gate runs several times faster.
    Returns:
        `model` itself for float32, else a quantized copy.
    """
    if not precision.quantized:
        return model
    from ..quant import PackedLinear, RTNConfig, quantize_

    if precision.kind == "int8-dynamic":
        config = RTNConfig(bits=8, group_size=0, symmetric=precision.symmetric, activations="int8")
    else:
        config = RTNConfig(bits=precision.bits, group_size=precision.block_size, symmetric=precision.symmetric)

    def layers(m, name):
        return isinstance(m, nn.Linear) and (precision.quantize_lm_head or not name.endswith("lm_head"))

    ref = copy.deepcopy(model)
    if precision.quantize_lm_head and _tied(ref):  # untie: quantizing lm_head must not touch the embedding
        ref.lm_head.weight = nn.Parameter(ref.lm_head.weight.detach().clone(), requires_grad=False)
    quantize_(ref, config, filter_fn=layers)
    if not packed:
        for name, m in list(ref.named_modules()):
            if isinstance(m, PackedLinear):
                lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
                lin.weight = nn.Parameter(m.dequantize(torch.float32), requires_grad=False)
                if m.bias is not None:
                    lin.bias = nn.Parameter(m.bias.detach().clone(), requires_grad=False)
                ref.set_submodule(name, lin)
    return ref.eval()


def _tied(model: nn.Module) -> bool:
    head, emb = getattr(model, "lm_head", None), model.get_input_embeddings()
    return head is not None and emb is not None and head.weight is emb.weight


def quantize_onnx(src: str, dst: str, precision: Precision) -> None:
    """Quantize an exported float decoder with ONNX Runtime's quantizers (see the module table).

    Args:
        src: float model.onnx path.
        dst: where to write the quantized model (weights beside it in ``<name>.data`` when large).
        precision: a quantized Precision.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    large = os.path.exists(src + ".data")  # a float graph stored with external data stays external
    model = onnx.load(src)
    exclude = [] if precision.quantize_lm_head else [n.name for n in model.graph.node
                                                      if n.op_type == "MatMul" and n.name == "lm_head"]
    if precision.quantize_lm_head and _fold_transposed_weight(model, "lm_head"):
        src = dst + ".folded.onnx"  # quantize_dynamic reads a file
        onnx.save_model(model, src, save_as_external_data=large, all_tensors_to_one_file=True,
                        location=os.path.basename(src) + ".data")
    # both quantizers log a line per node at INFO (one through the root logger): keep them quiet
    chatty = [logging.getLogger(), logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")]
    levels = [c.level for c in chatty]
    for c in chatty:
        c.setLevel(logging.WARNING)
    try:
        if precision.kind == "int8-dynamic":
            del model
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                             per_channel=False, nodes_to_exclude=exclude, use_external_data_format=large,
                             extra_options={"MatMulConstBOnly": True})
            for leftover in (dst + ".folded.onnx", dst + ".folded.onnx.data"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            return
        q = MatMulNBitsQuantizer(model, bits=precision.bits, block_size=precision.block_size,
                                 is_symmetric=precision.symmetric, accuracy_level=precision.accuracy_level,
                                 nodes_to_exclude=exclude, op_types_to_quantize=("MatMul",))
        q.process()
    finally:
        for c, level in zip(chatty, levels):
            c.setLevel(level)
    out = q.model.model
    for leftover in (dst + ".folded.onnx", dst + ".folded.onnx.data"):
        if os.path.exists(leftover):
            os.remove(leftover)
    if large:
        onnx.save_model(out, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(dst) + ".data", size_threshold=1024)
    else:
        onnx.save_model(out, dst)


def _fold_transposed_weight(model, name: str) -> bool:
    """Give MatMul `name` its own transposed initializer when its weight is Transpose(initializer).

    A tied lm_head is exported as MatMul(x, Transpose(embedding)); the quantizers only take constant
    weights. Returns whether the graph changed.
    """
    from onnx import numpy_helper

    node = next((n for n in model.graph.node if n.op_type == "MatMul" and n.name == name), None)
    if node is None:
        return False
    producer = next((n for n in model.graph.node if node.input[1] in n.output), None)
    inits = {t.name: t for t in model.graph.initializer}
    if producer is None or producer.op_type != "Transpose" or producer.input[0] not in inits:
        return False
    w = numpy_helper.to_array(inits[producer.input[0]]).T.copy()  # (in, out)
    model.graph.initializer.append(numpy_helper.from_array(w, f"{name}.weight_T"))
    node.input[1] = f"{name}.weight_T"
    if not any(producer.output[0] in n.input for n in model.graph.node):
        model.graph.node.remove(producer)
    return True
