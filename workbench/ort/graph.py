"""The fused ONNX graph: the decoder written directly with ONNX Runtime's contrib operators, as the
onnxruntime-genai model builder emits them, so that decode is not spent on Transpose / Expand / Concat.

Per layer (GLM-4; GLM without the two sandwich norms):
    x, residual = SkipSimplifiedLayerNormalization(residual, delta)   # input_layernorm (layer 0: RMSNorm)
    qkv = MatMul(x, W_qkv) + b_qkv                                    # q, k, v fused: one weight read
    a, present.k, present.v = GroupQueryAttention(qkv, past.k, past.v, seqlens_k, total_len, cos, sin,
                                                  position_ids)       # rotary inside: partial, interleaved
    o = RMSNorm(MatMul(a, W_o))                                       # post_self_attn_layernorm
    y, residual = SkipSimplifiedLayerNormalization(residual, o)       # post_attention_layernorm
    gate, up = Split(MatMul(y, W_gate_up)); h = up * gate * Sigmoid(gate)
    delta = RMSNorm(MatMul(h, W_down))                                # post_mlp_layernorm
    logits = MatMul(SkipSimplifiedLayerNormalization(residual, delta), W_lm)   # final norm, lm_head

The RMSNorms without a skip input are written in standard ONNX ops (Pow, ReduceMean, Add, Sqrt,
Div, Mul), which ONNX Runtime fuses into SimplifiedLayerNormalization when it loads the graph, so the
file stays valid for `onnx.checker` (SimplifiedLayerNormalization is not an ONNX-domain op).
Inputs, outputs and KV layout are those of the plain graph (`wrapper.input_names`), so the same
runtime, gate and genai_config serve both. GroupQueryAttention derives the per-sequence lengths from
`attention_mask` (sum - 1) and takes the rotary positions from `position_ids`.
Weights are written as the model holds them: float Linears as float32 MatMul initializers (B = W^T,
(in, out)); the workbench's quantized layers (RTN or GPTQ `PackedLinear`, torch.ao W8A8) as
`MatMulNBits` with their own codes, scales and zero points (`nbits`), nothing re-quantized, so the
graph computes with the weights that were measured. Weight nodes are named after their modules
(``model.layers.0.self_attn.qkv_proj``, ``lm_head``).
"""
from __future__ import annotations

import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from .contract import EXTERNAL_DATA_BYTES, OPSET, DecoderShape, input_names, output_names
from .nbits import block_size, codes_of, concat_rows, is_quantized, to_nbits

MS = "com.microsoft"
FUSED_ARCHITECTURES = ("GlmForCausalLM", "Glm4ForCausalLM")  # the decoders the fused writer knows
ACCURACY_LEVEL = 4  # MatMulNBits computes with int8 activations: ~1.9x faster than float on CPU


class _Graph:
    """Collects nodes and initializers; with `data` (an open binary file) large weights are streamed
    to it as external data instead of being held in memory (a 1.5B model stays one copy: torch's)."""

    def __init__(self, data=None, location: str = ""):
        self.nodes, self.inits, self._n = [], [], 0
        self.data, self.location = data, location

    def init(self, name: str, array) -> str:
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        array = np.ascontiguousarray(array)
        if self.data is None or array.nbytes < 1024:
            self.inits.append(numpy_helper.from_array(array, name))
            return name
        offset = self.data.tell()
        pad = (-offset) % 64  # aligned, as onnx's own external-data writer does
        self.data.write(b"\0" * pad)
        offset += pad
        self.data.write(memoryview(array).cast("B"))  # no copy of a GB-sized weight
        t = onnx.TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype), dims=array.shape)
        t.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        self.inits.append(t)
        return name

    def op(self, op_type: str, inputs, outputs=1, name=None, domain="", **attrs):
        self._n += 1
        name = name or f"/{op_type}_{self._n}"
        outs = [f"{name}/out{i}" for i in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, domain=domain, **attrs))
        return outs[0] if len(outs) == 1 else outs

    def linear(self, x: str, modules, name: str, accuracy_level: int = ACCURACY_LEVEL, out: str | None = None) -> str:
        """x @ W^T + b of one Linear, or of several whose outputs are concatenated (q, k, v -> qkv).

        Float layers become MatMul(x, W^T); quantized ones one MatMulNBits holding their own codes.
        `out` names the result (e.g. "logits").
        """
        codes = [codes_of(m) for m in modules]
        if any(c is None for c in codes) and any(c is not None for c in codes):
            raise ValueError(f"{name}: float and quantized layers cannot share one MatMul")
        if codes[0] is None:
            parts = [np.ascontiguousarray(m.weight.detach().float().t().numpy()) for m in modules]  # (in, out_i)
            w = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)  # (in, out), C order: one copy
            biases = [None if m.bias is None else m.bias.detach().float().numpy() for m in modules]
            bias = None if all(b is None for b in biases) else np.concatenate(
                [np.zeros(m.out_features, np.float32) if b is None else b for b, m in zip(biases, modules)])
            op, ins, attrs = "MatMul", [x, self.init(f"{name}.weight_T", w)], {}
        else:
            c = concat_rows(codes)
            w, bias = to_nbits(c), c.bias
            ins = [x, self.init(f"{name}.qweight", w.B), self.init(f"{name}.scales", w.scales)]
            if w.zero_points is not None:
                ins.append(self.init(f"{name}.qzeros", w.zero_points))
            op, attrs = "MatMulNBits", dict(domain=MS, K=w.K, N=w.N, bits=w.bits, block_size=w.block_size,
                                            accuracy_level=accuracy_level)
        final = [out] if out else 1
        y = self.op(op, ins, final if bias is None else 1, name=name, **attrs)
        if bias is not None:
            y = self.op("Add", [y, self.init(f"{name}.bias", bias)], final, name=f"/{name}/bias")
        return y

    def rms_norm(self, x: str, weight: str, eps: float, prefix: str) -> str:
        """RMSNorm in standard ops (ONNX Runtime fuses it into SimplifiedLayerNormalization)."""
        two = self.init(f"{prefix}/two", np.array(2.0, np.float32))
        axes = self.init(f"{prefix}/axes", np.array([-1], np.int64))
        eps_c = self.init(f"{prefix}/eps", np.array(eps, np.float32))
        sq = self.op("Pow", [x, two], name=f"{prefix}/Pow")
        mean = self.op("ReduceMean", [sq, axes], name=f"{prefix}/ReduceMean", keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [mean, eps_c], name=f"{prefix}/Add")], name=f"{prefix}/Sqrt")
        normed = self.op("Div", [x, std], name=f"{prefix}/Div")
        return self.op("Mul", [normed, weight], name=f"{prefix}/Mul")

    def skip_norm(self, residual: str, delta: str, weight: str, eps: float, prefix: str) -> tuple[str, str]:
        """(RMSNorm(residual + delta), residual + delta) in one SkipSimplifiedLayerNormalization."""
        outs = [f"{prefix}/output_0", "", "", f"{prefix}/output_3"]
        self.op("SkipSimplifiedLayerNormalization", [residual, delta, weight], outs, name=prefix, domain=MS,
                epsilon=eps)
        return outs[0], outs[3]


def _rotary_caches(model, shape: DecoderShape, max_pos: int) -> tuple[np.ndarray, np.ndarray, int]:
    """cos / sin caches (max_pos, >= rotary_dim / 2) from the model's own rotary module; rotary_dim."""
    rot = model.model.rotary_emb
    pos = torch.arange(max_pos)[None]  # (1, P)
    with torch.no_grad():
        cos, sin = rot(torch.zeros(1, dtype=torch.float32), position_ids=pos)  # (1, P, rotary_dim)
    rotary_dim = cos.shape[-1]
    if rotary_dim > shape.head_dim or rotary_dim % 2:
        raise ValueError(f"unsupported rotary dimension {rotary_dim} for head_dim {shape.head_dim}")
    half = rotary_dim // 2  # GLM repeats the first half interleaved: cos[..., :half] are the frequencies
    cos, sin = cos[0, :, :half].float().numpy(), sin[0, :, :half].float().numpy()
    # GroupQueryAttention wants the cache width to be a multiple of 8: pad with angle 0 (cos 1, sin 0),
    # which leaves the extra interleaved pairs as they are, i.e. exactly the partial rotary
    width = -(-half // 8) * 8
    if width > shape.head_dim // 2:
        raise ValueError(f"rotary dimension {rotary_dim} of head_dim {shape.head_dim}: GroupQueryAttention needs "
                         f"the cos cache width ({width}) <= head_dim / 2")
    if width > half:
        cos = np.pad(cos, ((0, 0), (0, width - half)), constant_values=1.0)
        sin = np.pad(sin, ((0, 0), (0, width - half)), constant_values=0.0)
    return cos, sin, rotary_dim


def _check(model) -> None:
    name = type(model).__name__
    if name not in FUSED_ARCHITECTURES:
        raise ValueError(f"the fused graph is written for {' / '.join(FUSED_ARCHITECTURES)}, not {name}")
    cfg = model.config
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"the fused graph supports default RoPE only, not {rope.get('rope_type')!r}")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise ValueError(f"the fused graph supports SiLU MLPs only, not {cfg.hidden_act!r}")


@torch.no_grad()
def build_fused(model: nn.Module, data=None, location: str = "", *,
                accuracy_level: int = ACCURACY_LEVEL) -> tuple[onnx.ModelProto, DecoderShape]:
    """The fused decoder graph of a float GLM / GLM-4 causal LM (see module doc).

    Args:
        model: GlmForCausalLM or Glm4ForCausalLM (pruned or not) with float nn.Linear layers or the
            workbench's 4- / 8-bit quantized ones.
        data: an open binary file to stream the weights to (external data), or None to keep them inline.
        location: the data file's name relative to the model file (with `data`).
        accuracy_level: MatMulNBits compute precision (4: int8 activations; 0: float).
    Returns:
        (ModelProto, DecoderShape).
    Raises:
        ValueError: an architecture or setting the builder does not handle.
    """
    _check(model)
    shape = DecoderShape.of(model)
    cfg = model.config
    eps = float(cfg.rms_norm_eps)
    L, hd = shape.num_layers, shape.head_dim
    max_pos = int(getattr(cfg, "max_position_embeddings", 4096))
    g = _Graph(data, location)
    ids, mask, pos = "input_ids", "attention_mask", "position_ids"
    cos, sin, rotary_dim = _rotary_caches(model, shape, max_pos)
    g.init("cos_cache", cos)
    g.init("sin_cache", sin)
    one = g.init("one_i64", np.array(1, np.int64))
    axis1 = g.init("axes_1", np.array([1], np.int64))
    seqlens = g.op("Cast", [g.op("Sub", [g.op("ReduceSum", [mask, axis1], name="/mask/ReduceSum", keepdims=0), one],
                                 name="/mask/Sub")], name="/mask/seqlens_k", to=TensorProto.INT32)
    total = g.op("Cast", [g.op("Gather", [g.op("Shape", [mask], name="/mask/Shape"), one], name="/mask/Gather",
                               axis=0)], name="/mask/total_len", to=TensorProto.INT32)
    embed = g.init("model.embed_tokens.weight", model.get_input_embeddings().weight.float())
    hidden = g.op("Gather", [embed, ids], name="/model/embed_tokens", axis=0)  # (B, S, H)
    residual, delta = hidden, None
    for i, layer in enumerate(model.model.layers):
        p = f"model.layers.{i}"
        attn, mlp = layer.self_attn, layer.mlp
        w_in = g.init(f"{p}.input_layernorm.weight", layer.input_layernorm.weight.float())
        if delta is None:
            x = g.rms_norm(residual, w_in, eps, f"/{p}/input_layernorm")
        else:
            x, residual = g.skip_norm(residual, delta, w_in, eps, f"/{p}/input_layernorm")
        nh = attn.q_proj.out_features // hd
        kvh = attn.k_proj.out_features // hd
        qkv = g.linear(x, [attn.q_proj, attn.k_proj, attn.v_proj], f"{p}.self_attn.qkv_proj", accuracy_level)
        a = g.op("GroupQueryAttention",
                 [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens, total,
                  "cos_cache", "sin_cache", pos],
                 [f"/{p}/self_attn/GQA/output_0", f"present.{i}.key", f"present.{i}.value"],
                 name=f"/{p}/self_attn/GQA", domain=MS, num_heads=nh, kv_num_heads=kvh, do_rotary=1,
                 rotary_interleaved=1, scale=float(attn.scaling))[0]
        o = g.linear(a, [attn.o_proj], f"{p}.self_attn.o_proj", accuracy_level)
        if hasattr(layer, "post_self_attn_layernorm"):
            o = g.rms_norm(o, g.init(f"{p}.post_self_attn_layernorm.weight", layer.post_self_attn_layernorm.weight.float()),
                           eps, f"/{p}/post_self_attn_layernorm")
        y, residual = g.skip_norm(residual, o, g.init(f"{p}.post_attention_layernorm.weight",
                                                      layer.post_attention_layernorm.weight.float()),
                                  eps, f"/{p}/post_attention_layernorm")
        gu = g.linear(y, [mlp.gate_up_proj], f"{p}.mlp.gate_up_proj", accuracy_level)
        gate, up = g.op("Split", [gu], 2, name=f"/{p}/mlp/Split", axis=-1, num_outputs=2)
        act = g.op("Mul", [gate, g.op("Sigmoid", [gate], name=f"/{p}/mlp/Sigmoid")], name=f"/{p}/mlp/silu")
        h = g.op("Mul", [up, act], name=f"/{p}/mlp/Mul")
        d = g.linear(h, [mlp.down_proj], f"{p}.mlp.down_proj", accuracy_level)
        if hasattr(layer, "post_mlp_layernorm"):
            d = g.rms_norm(d, g.init(f"{p}.post_mlp_layernorm.weight", layer.post_mlp_layernorm.weight.float()),
                           eps, f"/{p}/post_mlp_layernorm")
        delta = d
    normed, _ = g.skip_norm(residual, delta, g.init("model.norm.weight", model.model.norm.weight.float()), eps,
                            "/model/norm")
    g.linear(normed, [model.lm_head], "lm_head", accuracy_level, out="logits")

    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("input_ids", i64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_mask", i64, ["batch", "total_sequence"]),
              helper.make_tensor_value_info("position_ids", i64, ["batch", "sequence"])]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch", "sequence", shape.vocab_size])]
    for i in range(L):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", f32,
                                                        ["batch", shape.num_kv_heads, "past_sequence", hd]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", f32,
                                                         ["batch", shape.num_kv_heads, "total_sequence", hd]))
    assert [i.name for i in inputs] == input_names(L) and [o.name for o in outputs] == output_names(L)
    graph = helper.make_graph(g.nodes, "glm_decoder_fused", inputs, outputs, g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                              producer_name="autoglm-workbench", doc_string=f"rotary_dim {rotary_dim}")
    proto.ir_version = 10
    return proto, shape


def export_fused(model: nn.Module, path: str | os.PathLike, *, accuracy_level: int = ACCURACY_LEVEL) -> DecoderShape:
    """Write the fused graph of `model` to `path` and check it (onnx.checker, full check).

    Args:
        model: the GLM / GLM-4 model (float or with the workbench's quantized layers).
        path: target .onnx (weights in ``<name>.data`` beside it when above 1 GiB).
        accuracy_level: MatMulNBits compute precision.
    Returns:
        The DecoderShape.
    """
    path = os.fspath(path)
    data_path = path + ".data"
    if os.path.exists(data_path):
        os.remove(data_path)
    if state_bytes(model) > EXTERNAL_DATA_BYTES:
        with open(data_path, "wb") as data:
            proto, shape = build_fused(model, data, os.path.basename(data_path), accuracy_level=accuracy_level)
    else:
        proto, shape = build_fused(model, accuracy_level=accuracy_level)
    onnx.save_model(proto, path)
    onnx.checker.check_model(path, full_check=True)
    return shape


def state_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers (packed codes included): how big its graph will be."""
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def initializer_bytes(proto: onnx.ModelProto) -> int:
    """Bytes the graph's weights store (inline or as external data): what the artifact holds."""
    total = 0
    for t in proto.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            total += int(next(e.value for e in t.external_data if e.key == "length"))
        else:
            total += numpy_helper.to_array(t).nbytes
    return total


def precision_label(model: nn.Module) -> str:
    """What the decoder layers' weight MatMuls run, e.g. "MatMulNBits int4 block 32" or "float32"
    (", lm_head too" when the output projection is quantized as well)."""
    kinds, head = set(), ""
    for name, m in model.named_modules():
        if type(m) is not nn.Linear and not is_quantized(m):
            continue
        c = codes_of(m)
        kind = "float32" if c is None else f"MatMulNBits int{c.bits} block {block_size(c)}"
        if name.endswith("lm_head"):
            head = "" if c is None else ", lm_head too"
        else:
            kinds.add(kind)
    return " + ".join(sorted(kinds)) + head if kinds else "float32"
