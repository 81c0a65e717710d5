"""Graphs from the workbench's own weights, shared by every builder of plain (exporter-made) graphs: the
dequantized PyTorch twin of a quantized model, MatMuls named after their modules, and the recipe's codes
packed into those MatMuls as MatMulNBits (`workbench.ort.nbits`), never re-quantized.

    ref = dequantized(qmodel)          # float Linears holding the codes' values: what an exporter reads
    tidy(program.model)                # dynamo graph: MatMuls named "model.layers.0.self_attn.q_proj"
    pack_plain("model.onnx", qmodel, accuracy_level=4)   # those MatMuls -> MatMulNBits with qmodel's codes
"""
from __future__ import annotations

import ast
import copy

import onnx
import torch
from torch import nn

_KEEP_METADATA = ("pkg.torch.onnx.name_scopes",)


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


def pack_plain(path: str, model: nn.Module, accuracy_level: int, within: tuple[str, ...] = ("",)) -> int:
    """Swap the weight MatMuls of an exported plain graph for MatMulNBits holding `model`'s own codes.

    The plain graph is exported from `dequantized(model)`; its MatMul nodes are named after their
    modules (`wrapper.tidy`), which is how each finds its layer's codes.

    Args:
        path: the plain model.onnx (rewritten in place; external data kept external).
        model: the quantized model whose codes are packed.
        accuracy_level: MatMulNBits' compute precision (4: int8 activations; 1: float32).
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
                               accuracy_level=accuracy_level)
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


def tidy(graph_model) -> None:
    """Name weight MatMuls after their module; drop exporter metadata but the name scopes (in place).

    Args:
        graph_model: the exporter's onnx_ir Model (``ONNXProgram.model``).
    """
    used = set()
    for node in graph_model.graph.all_nodes():
        meta = node.metadata_props
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        linear = meta.get("pkg.torch.onnx.class_hierarchy", "").endswith("Linear', 'aten.linear.default']")
        for key in [k for k in meta if k not in _KEEP_METADATA]:
            del meta[key]
        if node.op_type == "MatMul" and scopes and linear:
            module = _module_name(scopes)
            if module and module not in used:
                used.add(module)
                node.name = module


def _module_name(scopes: str) -> str | None:
    """'model.layers.0.self_attn.q_proj' from the exporter's name-scope list (wrapper prefix removed)."""
    try:
        parts = ast.literal_eval(scopes)
    except (ValueError, SyntaxError):
        return None
    modules = [p for p in parts[:-1] if p]  # the last entry is the op, e.g. 'linear_3'
    if not modules:
        return None
    name = modules[-1]
    return name[len("model."):] if name.startswith("model.") else name
