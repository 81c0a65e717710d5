"""The GGUF writer (workbench.llamacpp.writer), read back with the `gguf` package's reader: llama.cpp's
glm4 names and hyper-parameters, the recipe's codes and pruned shapes, the tokenizer; no llama.cpp needed."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as GGML
from gguf import GGUFReader
from gguf.quants import dequantize

from workbench.export.precision import precision_of, recipe_model
from workbench.llamacpp import GGUFWriteError, write_gguf
from workbench.recipe import Recipe


def field(reader, key):
    return reader.fields[key].contents()


def tensors(reader):
    return {t.name: t for t in reader.tensors}


@pytest.fixture(scope="module")
def float_file(tiny, tmp_path_factory):
    model, tok = tiny
    path = tmp_path_factory.mktemp("gguf") / "f32.gguf"
    return write_gguf(model, tok, path), GGUFReader(path)


def test_hyper_parameters_are_llama_cpps_glm4(tiny, float_file):
    model, _ = tiny
    cfg = model.config
    written, r = float_file
    assert field(r, "general.architecture") == "glm4"
    assert field(r, "glm4.block_count") == cfg.num_hidden_layers
    assert field(r, "glm4.embedding_length") == cfg.hidden_size
    assert field(r, "glm4.feed_forward_length") == cfg.intermediate_size
    assert field(r, "glm4.attention.head_count") == cfg.num_attention_heads
    assert field(r, "glm4.attention.head_count_kv") == cfg.num_key_value_heads
    assert field(r, "glm4.attention.key_length") == cfg.head_dim
    assert field(r, "glm4.rope.dimension_count") == cfg.head_dim // 2  # partial_rotary_factor 0.5
    assert field(r, "glm4.attention.layer_norm_rms_epsilon") == pytest.approx(cfg.rms_norm_eps)
    assert written.exact and written.types == {"F32": len(r.tensors)}


def test_tensor_names_and_float_weights(tiny, float_file):
    model, _ = tiny
    _, r = float_file
    t = tensors(r)
    layer = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "post_attention_norm", "ffn_norm", "ffn_up",
             "ffn_down", "post_ffw_norm"}
    names = {"token_embd.weight", "output_norm.weight"}
    for i in range(model.config.num_hidden_layers):
        names |= {f"blk.{i}.{n}.weight" for n in layer} | {f"blk.{i}.attn_{x}.bias" for x in "qkv"}
    assert set(t) == names  # tied embedding: no output.weight, llama.cpp reuses token_embd
    up = model.model.layers[1].mlp.gate_up_proj.weight.detach().numpy()
    np.testing.assert_array_equal(np.asarray(t["blk.1.ffn_up.weight"].data), up)  # gate half first, as both compute
    np.testing.assert_array_equal(np.asarray(t["blk.0.post_attention_norm.weight"].data),
                                  model.model.layers[0].post_self_attn_layernorm.weight.detach().numpy())


def test_tokenizer_is_embedded(tiny, float_file):
    model, tok = tiny
    _, r = float_file
    tokens = field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == model.get_input_embeddings().num_embeddings
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    assert field(r, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    for word in ("<|user|>", "<|assistant|>"):
        assert tokens[tok.convert_tokens_to_ids(word)] == word
    assert len(field(r, "tokenizer.ggml.merges")) > 100


@pytest.mark.parametrize("quant,qtype", [({"method": "rtn", "bits": 4, "group_size": 32}, GGML.Q4_0),
                                         ({"method": "gptq", "bits": 4, "group_size": 32}, GGML.Q4_0),
                                         ({"method": "rtn", "bits": 8, "group_size": 32}, GGML.Q8_0)])
def test_quantized_layers_are_the_recipes_codes(tiny, float_file, tmp_path, quant, qtype):
    from workbench.calib import default_calibration

    model, tok = tiny
    recipe = Recipe.from_json({"quant": quant})
    qmodel = recipe_model(model, recipe, precision_of(recipe), default_calibration(tok, n=4))
    written = write_gguf(qmodel, tok, tmp_path / "q.gguf")
    assert written.exact and written.types[qtype.name] == 6 * model.config.num_hidden_layers
    t = tensors(GGUFReader(tmp_path / "q.gguf"))["blk.2.attn_output.weight"]
    assert t.tensor_type == qtype
    got = dequantize(np.asarray(t.data), qtype).reshape(qmodel.model.layers[2].self_attn.o_proj.out_features, -1)
    np.testing.assert_array_equal(got, qmodel.model.layers[2].self_attn.o_proj.dequantize().numpy())
    assert written.nbytes < {GGML.Q4_0: 0.35, GGML.Q8_0: 0.5}[qtype] * float_file[0].nbytes


def test_a_quantized_lm_head_is_written_as_output(tiny, tmp_path):
    model, tok = tiny
    recipe = Recipe.from_json({"quant": {"method": "rtn", "bits": 4, "group_size": 32}})
    qmodel = recipe_model(model, recipe, precision_of(recipe, quantize_lm_head=True))
    write_gguf(qmodel, tok, tmp_path / "head.gguf")
    t = tensors(GGUFReader(tmp_path / "head.gguf"))
    assert t["output.weight"].tensor_type == GGML.Q4_0 and t["token_embd.weight"].tensor_type == GGML.F32


@pytest.mark.parametrize("prune,key,expected", [({"method": "channels", "ratio": 0.5}, "glm4.feed_forward_length", 384),
                                                ({"method": "heads", "ratio": 0.5}, "glm4.attention.head_count", 4)])
def test_structured_pruning_writes_the_smaller_shapes(tiny, tmp_path, prune, key, expected):
    model, tok = tiny
    recipe = Recipe.from_json({"prune": dict(prune, importance="magnitude")})
    pruned = recipe_model(model, recipe, precision_of(recipe))
    written = write_gguf(pruned, tok, tmp_path / "p.gguf")
    r = GGUFReader(tmp_path / "p.gguf")
    assert field(r, key) == expected
    assert written.nbytes < write_gguf(model, tok, tmp_path / "f.gguf").nbytes


def test_f16_halves_the_float_weights(tiny, tmp_path):
    model, tok = tiny
    f16 = write_gguf(model, tok, tmp_path / "h.gguf", float_type="f16")
    assert "F16" in f16.types and not f16.exact and 0 < f16.max_abs < 1e-2
    with pytest.raises(GGUFWriteError, match="float_type"):
        write_gguf(model, tok, tmp_path / "x.gguf", float_type="q4")


def test_glm_is_llama_cpps_chatglm(tiny, tmp_path):
    """GlmForCausalLM (glm-4-9b-chat-hf, GLM-Edge): llama.cpp's chatglm, no sandwich norms."""
    from random_glm import TINY_SHAPE, random_glm

    _, tok = tiny
    glm = random_glm("glm", vocab_size=len(tok), **TINY_SHAPE)
    write_gguf(glm, tok, tmp_path / "glm.gguf")
    r = GGUFReader(tmp_path / "glm.gguf")
    assert field(r, "general.architecture") == "chatglm" and field(r, "chatglm.block_count") == 2
    assert "blk.0.post_ffw_norm.weight" not in tensors(r) and "blk.1.ffn_up.weight" in tensors(r)


def test_refuses_what_it_cannot_write(tiny, tmp_path):
    import torch
    from random_glm import tiny_glm4

    _, tok = tiny
    with pytest.raises(GGUFWriteError, match="Linear does not export to GGUF"):
        write_gguf(torch.nn.Linear(2, 2), tok, tmp_path / "linear.gguf")
    with pytest.raises(GGUFWriteError, match="embedding's 100 rows"):
        write_gguf(tiny_glm4(), tok, tmp_path / "small.gguf")  # vocab 100: the tokenizer does not fit
    assert list(tmp_path.iterdir()) == []  # nothing half-written
