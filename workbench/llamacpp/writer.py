"""A GLM-4 or GLM causal LM (float, pruned or with the workbench's quantized layers) written as a GGUF file
that llama.cpp's `glm4` (Glm4ForCausalLM: GLM-4-0414, AutoGLM's text decoder) or `chatglm` (GlmForCausalLM:
glm-4-9b-chat-hf, GLM-Edge) architecture reads, with the `gguf` package.

    from workbench.llamacpp import write_gguf
    written = write_gguf(model, tokenizer, "deploy/model.gguf")
    written.summary()

What is written (llama.cpp's names, from `gguf.get_tensor_name_map`):
- the hyper-parameters (`glm4.*` / `chatglm.*`): layers, width, heads, KV heads, head size, MLP width, RMS epsilon,
  RoPE base and its partial dimension (GLM-4 rotates the first `partial_rotary_factor` of each
  head, interleaved pairs, as GLM does: llama.cpp's "normal" RoPE, so no weight is permuted); a structurally
  pruned model's per-layer heads and MLP widths as arrays, so the smaller shapes stay smaller;
- every Linear: float as F32 (or F16 where asked), quantized layers as the block that holds their
  own codes (`blocks.pack_codes`: Q4_0 / Q8_0 exactly, Q4_1 or re-quantized where not); the
  fused gate/up projection as llama.cpp's `ffn_up` (gate half first, as both compute it); norms,
  biases and the embedding as F32; the output projection only when it is not tied to the embedding;
- the tokenizer (byte-level BPE: tokens, types, merges, special ids, chat template).

llama.cpp's tokenizer applies its own pre-tokenizer regex; a tokenizer.json normalizer has no GGUF
form, so the workbench feeds llama.cpp the Hugging Face tokenizer's ids (`LlamaCppDecoder`) and the
export records how often llama.cpp's own tokenization agrees (`tokenizer_agreement`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import gguf
from gguf import GGMLQuantizationType as GGML
from torch import nn

from .blocks import GGUFTensor, float_tensor, pack_codes

ARCHS = {"Glm4ForCausalLM": gguf.MODEL_ARCH.GLM4, "GlmForCausalLM": gguf.MODEL_ARCH.CHATGLM}
ARCH = "glm4"  # AutoGLM's text decoder
PRE_TOKENIZER = "gpt-2"  # llama.cpp's byte-level BPE regex closest to a GPT-2 ByteLevel pre-tokenizer
FLOAT_TYPES = {"f32": GGML.F32, "f16": GGML.F16}


class GGUFWriteError(ValueError):
    """A model or tokenizer that this writer cannot put into a GGUF file; the message says why and what to do."""


@dataclass
class GGUFWritten:
    """What `write_gguf` wrote: path, bytes, and per tensor its GGUF type and whether it is exact."""

    path: Path
    nbytes: int
    tensors: dict[str, GGUFTensor] = field(repr=False)

    @property
    def types(self) -> dict[str, int]:
        """GGUF type name -> number of tensors of that type."""
        out: dict[str, int] = {}
        for t in self.tensors.values():
            out[t.qtype.name] = out.get(t.qtype.name, 0) + 1
        return dict(sorted(out.items()))

    @property
    def label(self) -> str:
        """"F32 + Q4_0" style label of the weight types, most tensors first (what a point's engine names)."""
        return " + ".join(k for k, _ in sorted(self.types.items(), key=lambda kv: -kv[1]))

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.tensors.values())

    @property
    def max_abs(self) -> float:
        """Largest |weight difference| between what llama.cpp reads and what the model computes with."""
        return max((t.max_abs for t in self.tensors.values()), default=0.0)

    def to_json(self) -> dict:
        hows = sorted({t.how for t in self.tensors.values()})
        return {"file": self.path.name, "bytes": self.nbytes, "types": self.types, "exact": self.exact,
                "max_abs_weight_difference": self.max_abs, "how": hows}

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.types.items())
        return (f"{self.path.name}: {self.nbytes / 2**20:.2f} MiB, {len(self.tensors)} tensors ({kinds}); "
                + ("the model's own weights exactly" if self.exact else f"max |dw| {self.max_abs:.3g}"))


def check_writable(model) -> None:
    """Raises GGUFWriteError for architectures this writer does not handle."""
    name = type(model).__name__
    if name == "Glm4vForConditionalGeneration":
        raise GGUFWriteError("a Glm4v (vision-language) model does not export to GGUF yet: its language model "
                             "needs M-RoPE sections and the vision tower a separate mmproj file; export it as "
                             "ONNX (`workbench export --format onnx`)")
    if name not in ARCHS:
        raise GGUFWriteError(f"{name} does not export to GGUF: the writer handles {', '.join(ARCHS)} "
                             "(llama.cpp architectures glm4, chatglm); export it as ONNX instead")
    cfg = model.config
    head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if name == "GlmForCausalLM" and any(a.self_attn.q_proj.out_features != cfg.hidden_size for a in model.model.layers):
        raise GGUFWriteError("llama.cpp's chatglm architecture needs heads x head size = hidden size (attn_output "
                             f"is square); this GLM has {model.model.layers[0].self_attn.q_proj.out_features // head} "
                             f"heads of {head} at width {cfg.hidden_size} (pruned heads?): export it as ONNX")


def write_gguf(model, tokenizer, path, *, float_type: str = "f32", name: str = "open-autoglm-tiny") -> GGUFWritten:
    """Write `model` and `tokenizer` to one GGUF file (see the module doc).

    Args:
        model: a Glm4ForCausalLM, float or with the workbench's quantized / pruned layers.
        tokenizer: its fast tokenizer.
        path: the .gguf file to write (its folder must exist).
        float_type: "f32" or "f16" for the float Linears and the embedding.
        name: general.name in the file.
    Returns:
        GGUFWritten.
    Raises:
        GGUFWriteError: an architecture, layer or tokenizer the writer cannot represent.
    """
    check_writable(model)
    if float_type not in FLOAT_TYPES:
        raise GGUFWriteError(f"float_type must be one of {', '.join(FLOAT_TYPES)}, got {float_type!r}")
    ftype = FLOAT_TYPES[float_type]
    path = Path(path)
    cfg = model.config
    layers = model.model.layers
    tensors = _tensors(model, ftype, ARCHS[type(model).__name__])
    arch = ARCHS[type(model).__name__]
    w = gguf.GGUFWriter(os.fspath(path), gguf.MODEL_ARCH_NAMES[arch])
    try:
        _hyper(w, cfg, layers, name)
        _tokenizer(w, tokenizer, model.get_input_embeddings().num_embeddings)
        for key, t in tensors.items():
            w.add_tensor(key, t.data, raw_dtype=None if t.qtype in (GGML.F32, GGML.F16) else t.qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    except BaseException:
        w.close()
        path.unlink(missing_ok=True)  # nothing half-written is left
        raise
    w.close()
    return GGUFWritten(path, path.stat().st_size, tensors)


def _hyper(w, cfg, layers, name: str) -> None:
    head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    heads = [a.self_attn.q_proj.out_features // head for a in layers]
    kv = [a.self_attn.k_proj.out_features // head for a in layers]
    ff = [a.mlp.down_proj.in_features for a in layers]
    rope = getattr(cfg, "rope_parameters", None) or {}
    partial = rope.get("partial_rotary_factor", getattr(cfg, "partial_rotary_factor", 0.5))
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    if rope.get("rope_type", "default") != "default":
        raise GGUFWriteError(f"RoPE scaling {rope.get('rope_type')!r} is not written to GGUF by the workbench")
    one = lambda xs: xs[0] if len(set(xs)) == 1 else xs  # noqa: E731 - uniform -> scalar, else per layer
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(len(layers))
    w.add_feed_forward_length(one(ff))
    w.add_head_count(one(heads))
    w.add_head_count_kv(one(kv))
    w.add_key_length(head)
    w.add_value_length(head)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(float(theta))
    w.add_rope_dimension_count(int(head * partial))


def _tensors(model, ftype: GGML, arch) -> dict[str, GGUFTensor]:
    """GGUF name -> GGUFTensor for every weight of the model."""
    from ..ort.nbits import codes_of, is_quantized

    names = gguf.get_tensor_name_map(arch, len(model.model.layers))
    tied = _tied(model)
    out: dict[str, GGUFTensor] = {}

    def gguf_name(hf: str) -> str:
        key = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        if key is None:
            raise GGUFWriteError(f"no llama.cpp {gguf.MODEL_ARCH_NAMES[arch]} tensor for {hf}; this checkpoint "
                                 "has layers that architecture does not read")
        return key

    for mod_name, module in model.named_modules():
        if mod_name == "lm_head" and tied:
            continue
        if is_quantized(module) or type(module) is nn.Linear:
            codes = codes_of(module)
            weight = pack_codes(codes) if codes is not None else float_tensor(module.weight.detach().numpy(), ftype)
            out[gguf_name(f"{mod_name}.weight")] = weight
            bias = codes.bias if codes is not None else (None if module.bias is None else module.bias.detach().numpy())
            if bias is not None:
                out[gguf_name(f"{mod_name}.bias")] = float_tensor(bias)
        elif isinstance(module, nn.Embedding):
            out[gguf_name(f"{mod_name}.weight")] = float_tensor(module.weight.detach().numpy(), ftype)
        elif not list(module.children()) and isinstance(getattr(module, "weight", None), nn.Parameter):
            out[gguf_name(f"{mod_name}.weight")] = float_tensor(module.weight.detach().float().numpy())  # norms
        elif not list(module.children()) and any(True for _ in module.parameters(recurse=False)):
            raise GGUFWriteError(f"{mod_name} ({type(module).__name__}) has weights the GGUF writer cannot "
                                 "represent (bfloat16 layers: use quant bits 8 or 4, or none)")
    return out


def _tied(model) -> bool:
    head, emb = getattr(model, "lm_head", None), model.get_input_embeddings()
    return head is not None and getattr(head, "weight", None) is emb.weight  # a quantized head is never tied


def _tokenizer(w, tokenizer, rows: int) -> None:
    """Byte-level BPE vocabulary, merges, special ids and chat template, padded to the embedding's rows."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise GGUFWriteError("the tokenizer has no fast (tokenizer.json) form; GGUF embeds a BPE vocabulary: "
                             "load the checkpoint with a tokenizer.json")
    data = json.loads(backend.to_str())
    model = data.get("model", {})
    if model.get("type") != "BPE":
        raise GGUFWriteError(f"a {model.get('type')} tokenizer has no GGUF form here (byte-level BPE is written)")
    tokens = [f"[PAD{i}]" for i in range(rows)]
    types = [gguf.TokenType.UNUSED] * rows
    for tok, i in model["vocab"].items():
        if i >= rows:
            raise GGUFWriteError(f"token id {i} >= the embedding's {rows} rows: tokenizer and model disagree")
        tokens[i], types[i] = tok, gguf.TokenType.NORMAL
    for t in data.get("added_tokens", []):
        if t["id"] < rows:
            tokens[t["id"]] = t["content"]
            types[t["id"]] = gguf.TokenType.CONTROL if t.get("special") else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    eos = tokenizer.eos_token_id
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(PRE_TOKENIZER)
    w.add_token_list(tokens)
    w.add_token_types([int(t) for t in types])
    w.add_token_merges(merges)
    w.add_eos_token_id(eos)
    w.add_bos_token_id(tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos)
    w.add_pad_token_id(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
    w.add_add_bos_token(False)
    if getattr(tokenizer, "chat_template", None):
        w.add_chat_template(tokenizer.chat_template)


__all__ = ["ARCH", "ARCHS", "FLOAT_TYPES", "GGUFWriteError", "GGUFWritten", "check_writable", "write_gguf"]
