"""Structured pruning: smaller dense layers computing exactly the masked function, saved and reloaded."""
import copy

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from random_glm import random_glm
from transformers import Glm4ForCausalLM, GlmForCausalLM, PreTrainedTokenizerFast

from workbench.model import load_model
from workbench.model.generate import decode_one, prefill
from workbench.prune import (METHODS, ChannelsConfig, HeadsConfig, StructuredReport, kept_channels,
                             kept_heads_per_group, prune_)

H, HEADS, KV, HD, INTER, V = 64, 8, 2, 16, 128, 100


def make_model(cls=Glm4ForCausalLM, seed: int = 0, heads: int = HEADS, kv: int = KV):
    """A random GLM-4 (or GLM) of this file's shape (the head counts are what the tests prune)."""
    return random_glm("glm4" if cls is Glm4ForCausalLM else "glm", seed=seed, vocab_size=V, hidden_size=H,
                      num_attention_heads=heads, num_key_value_heads=kv, head_dim=HD, intermediate_size=INTER)


@pytest.fixture(scope="module")
def base():
    return make_model()


@pytest.fixture(scope="module")
def ids():
    torch.manual_seed(1)
    return torch.randint(2, V, (2, 11))


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def masked_channels(base, report):
    """The unpruned model with the removed MLP channels' down_proj columns zeroed: the same function."""
    ref = copy.deepcopy(base)
    for name, kept in report.kept.items():
        w = ref.get_submodule(name).down_proj.weight  # (H, I)
        drop = torch.ones(w.shape[1], dtype=torch.bool)
        drop[list(kept)] = False
        with torch.no_grad():
            w[:, drop] = 0
    return ref


def masked_heads(base, report):
    """The unpruned model with the removed query heads' o_proj columns zeroed: the same function."""
    ref = copy.deepcopy(base)
    for name, kept in report.kept.items():
        w = ref.get_submodule(name).o_proj.weight  # (H, heads * hd)
        drop = torch.ones(w.shape[1] // HD, dtype=torch.bool)
        drop[list(kept)] = False
        with torch.no_grad():
            w.view(w.shape[0], -1, HD)[:, drop] = 0
    return ref


# ---- MLP channels -----------------------------------------------------------------------

@pytest.mark.parametrize("ratio, kept", [(0.0, 128), (0.1, 112), (0.3, 88), (0.5, 64), (0.9, 16)])
def test_channels_shapes_config_and_parameter_count(base, ratio, kept):
    model = copy.deepcopy(base)
    report = prune_(model, ChannelsConfig(ratio, "magnitude"))
    assert kept_channels(INTER, ratio) == kept and kept % 8 == 0
    assert (report.unit, report.before, report.after) == ("channels", INTER, kept)
    for layer in model.model.layers:
        assert tuple(layer.mlp.gate_up_proj.weight.shape) == (2 * kept, H)
        assert tuple(layer.mlp.down_proj.weight.shape) == (H, kept)
        assert (layer.mlp.gate_up_proj.out_features, layer.mlp.down_proj.in_features) == (2 * kept, kept)
    assert model.config.intermediate_size == kept
    assert base.config.intermediate_size == INTER  # the copy's config, not the baseline's
    removed = 2 * 3 * H * (INTER - kept)  # per layer: gate + up rows, down columns (no biases)
    assert report.params_before == n_params(base)
    assert report.params_after == n_params(model) == n_params(base) - removed
    assert report.blocks == ("model.layers.0.mlp", "model.layers.1.mlp")


@pytest.mark.parametrize("cls", [Glm4ForCausalLM, GlmForCausalLM], ids=lambda c: c.__name__)
@pytest.mark.parametrize("config, use_calib", [
    (ChannelsConfig(0.3, "magnitude"), False), (ChannelsConfig(0.3, "wanda"), True),
    (ChannelsConfig(0.5, "wanda"), False), (ChannelsConfig(0.9, "magnitude"), False),
], ids=str)
def test_pruned_channels_equal_the_masked_model(cls, config, use_calib, ids, calib):
    base = make_model(cls)
    model = copy.deepcopy(base)
    report = prune_(model, config, calib=calib if use_calib else None)
    assert report.importance == ("wanda" if use_calib else "magnitude")  # wanda without calib -> magnitude
    got = logits(model, ids)
    assert torch.allclose(got, logits(masked_channels(base, report), ids), atol=1e-5)
    assert not torch.allclose(got, logits(base, ids), atol=1e-3)  # something was really removed


def test_channel_scores_follow_the_documented_formulas(base, calib):
    mlp = base.model.layers[1].mlp
    k = kept_channels(INTER, 0.5)
    # magnitude: ||W_down[:, j]|| * (||W_gate[j]|| + ||W_up[j]||)
    gu, down = mlp.gate_up_proj.weight, mlp.down_proj.weight
    score = down.norm(dim=0) * (gu[:INTER].norm(dim=1) + gu[INTER:].norm(dim=1))
    report = prune_(copy.deepcopy(base), ChannelsConfig(0.5, "magnitude"))
    assert set(report.kept["model.layers.1.mlp"]) == set(score.topk(k).indices.tolist())
    # wanda: ||X_j|| * ||W_down[:, j]||, X = down_proj input over the calibration tokens
    seen = []
    h = mlp.down_proj.register_forward_hook(lambda m, a, o: seen.append(a[0].reshape(-1, INTER)))
    with torch.no_grad():
        for batch in calib:
            base(input_ids=batch)
    h.remove()
    act = torch.cat(seen).norm(dim=0)
    report = prune_(copy.deepcopy(base), ChannelsConfig(0.5, "wanda"), calib=calib)
    assert set(report.kept["model.layers.1.mlp"]) == set((act * down.norm(dim=0)).topk(k).indices.tolist())
    assert not base.model.layers[1].mlp.down_proj._forward_hooks  # calibration hooks removed


# ---- attention heads --------------------------------------------------------------------

@pytest.mark.parametrize("ratio, per_group", [(0.0, 4), (0.1, 4), (0.25, 3), (0.5, 2), (0.75, 1)])
def test_heads_shapes_config_and_parameter_count(base, ids, ratio, per_group):
    model = copy.deepcopy(base)
    report = prune_(model, HeadsConfig(ratio))
    heads = KV * per_group
    assert kept_heads_per_group(HEADS // KV, ratio) == per_group
    assert (report.unit, report.before, report.after) == ("heads", HEADS, heads)
    for layer in model.model.layers:
        attn = layer.self_attn
        assert tuple(attn.q_proj.weight.shape) == (heads * HD, H) and attn.q_proj.bias.shape == (heads * HD,)
        assert tuple(attn.o_proj.weight.shape) == (H, heads * HD)
        assert tuple(attn.k_proj.weight.shape) == tuple(attn.v_proj.weight.shape) == (KV * HD, H)
        assert attn.num_key_value_groups == per_group and attn.head_dim == HD
    assert (model.config.num_attention_heads, model.config.num_key_value_heads) == (heads, KV)
    assert model.config.head_dim == HD and base.config.num_attention_heads == HEADS
    removed = 2 * (HEADS - heads) * HD * (H + 1 + H)  # per layer: q rows + q bias, o columns
    assert report.params_after == n_params(model) == n_params(base) - removed
    for kept in report.kept.values():  # the same number of heads inside every KV group
        groups = [h // (HEADS // KV) for h in kept]
        assert [groups.count(g) for g in range(KV)] == [per_group] * KV
    assert logits(model, ids).shape == (2, 11, V)


@pytest.mark.parametrize("cls", [Glm4ForCausalLM, GlmForCausalLM], ids=lambda c: c.__name__)
@pytest.mark.parametrize("config, use_calib", [
    (HeadsConfig(0.25), False), (HeadsConfig(0.5, "wanda"), True), (HeadsConfig(0.75, "magnitude"), False),
], ids=str)
def test_pruned_heads_equal_the_masked_model(cls, config, use_calib, ids, calib):
    base = make_model(cls)
    model = copy.deepcopy(base)
    report = prune_(model, config, calib=calib if use_calib else None)
    assert report.importance == ("wanda" if use_calib else "magnitude")
    got = logits(model, ids)
    assert torch.allclose(got, logits(masked_heads(base, report), ids), atol=1e-5)
    assert not torch.allclose(got, logits(base, ids), atol=1e-3)


def test_pruned_heads_run_under_eager_attention_too(ids):
    base = make_model()
    base.set_attn_implementation("eager")  # eager repeats K/V by the block's num_key_value_groups
    model = copy.deepcopy(base)
    report = prune_(model, HeadsConfig(0.5))
    assert torch.allclose(logits(model, ids), logits(masked_heads(base, report), ids), atol=1e-5)


def test_head_scores_follow_the_documented_formula(base):
    attn = base.model.layers[0].self_attn
    wq = attn.q_proj.weight.reshape(HEADS, HD, H)
    wo = attn.o_proj.weight.reshape(H, HEADS, HD)
    score = (wq.norm(dim=(1, 2)) * wo.norm(dim=(0, 2))).reshape(KV, HEADS // KV)
    expected = sorted((score.topk(3, dim=1).indices + torch.arange(KV)[:, None] * (HEADS // KV)).flatten().tolist())
    report = prune_(copy.deepcopy(base), HeadsConfig(0.25))
    assert list(report.kept["model.layers.0.self_attn"]) == expected


def test_pruned_heads_decode_through_the_kv_cache(base, ids):
    model = copy.deepcopy(base)
    prune_(model, HeadsConfig(0.5))
    prune_(model, ChannelsConfig(0.3))
    out, cache = prefill(model, ids[:, :7])
    for t in range(7, 11):
        out = decode_one(model, ids[:, t:t + 1], cache)
        assert torch.allclose(out, logits(model, ids[:, :t + 1])[:, -1], atol=1e-5)


# ---- saving and reloading ---------------------------------------------------------------

def word_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {f"w{i}": i for i in range(V)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="w2"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="w0", eos_token="w1", unk_token="w2")


def test_save_and_reload_give_identical_logits(base, ids, calib, tmp_path):
    model = copy.deepcopy(base)
    prune_(model, HeadsConfig(0.25), calib=calib)
    prune_(model, ChannelsConfig(0.3), calib=calib)
    expected = logits(model, ids)
    model.save_pretrained(tmp_path)
    word_tokenizer().save_pretrained(tmp_path)
    again = Glm4ForCausalLM.from_pretrained(tmp_path).eval()
    assert (again.config.num_attention_heads, again.config.intermediate_size, again.config.head_dim) == (6, 88, HD)
    assert torch.equal(logits(again, ids), expected)
    loaded, tok = load_model(tmp_path)
    assert torch.equal(logits(loaded, ids), expected)
    assert tok.eos_token_id == 1 and tok.encode("w5 w7", add_special_tokens=False) == [5, 7]


# ---- errors -----------------------------------------------------------------------------

def test_a_ratio_that_empties_a_kv_group_is_refused_before_touching_the_model(base):
    model = copy.deepcopy(base)
    with pytest.raises(ValueError, match=r"prune.ratio 0.9 leaves 0 query heads per KV group.*at most 3 of 4"):
        prune_(model, HeadsConfig(0.9))
    assert model.model.layers[0].self_attn.q_proj.weight.shape == (HEADS * HD, H)
    with pytest.raises(ValueError, match="leaves 0 query heads"):  # plain multi-head attention: 1 head per group
        prune_(make_model(heads=4, kv=4), HeadsConfig(0.5))


@pytest.mark.parametrize("kwargs, field", [
    (dict(ratio=1.5), "prune.ratio"), (dict(ratio=-1), "prune.ratio"), (dict(ratio="x"), "prune.ratio"),
    (dict(importance="random"), "prune.importance must be one of magnitude, wanda"),
])
@pytest.mark.parametrize("cls", [ChannelsConfig, HeadsConfig], ids=lambda c: c.__name__)
def test_config_validation_names_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


@pytest.mark.parametrize("config", [ChannelsConfig(0.3), HeadsConfig(0.25)], ids=str)
def test_partial_or_empty_selection_is_refused(base, config):
    with pytest.raises(ValueError, match="must cover every"):
        prune_(copy.deepcopy(base), config, filter_fn=lambda m, n: isinstance(m, torch.nn.Linear) and ".0." in n)
    with pytest.raises(ValueError, match="no .* block"):
        prune_(copy.deepcopy(base), config, filter_fn=lambda m, n: False)


def test_method_names_and_report_type(base):
    assert METHODS["channels"] is ChannelsConfig and METHODS["heads"] is HeadsConfig
    assert isinstance(prune_(copy.deepcopy(base), ChannelsConfig(0.0)), StructuredReport)
