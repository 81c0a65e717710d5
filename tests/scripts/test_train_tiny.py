"""scripts/train_tiny.py runs end to end for a few iterations and writes a loadable checkpoint."""
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import train_tiny  # noqa: E402


def test_a_few_training_iterations_write_a_loadable_model(tmp_path):
    out = tmp_path / "tiny"
    train_tiny.main(["--out", str(out), "--iters", "3", "--train-steps", "120", "--batch", "4", "--no-eval"])
    info = json.loads((out / "training.json").read_text())
    assert info["iters"] == 3 and math.isfinite(info["final_loss_ema"])
    assert info["final_loss_ema"] < math.log(info["vocab"]) + 1  # near or below the uniform-guess loss
    from workbench.model import load_model

    model, tok = load_model(out)
    assert type(model).__name__ == "Glm4ForCausalLM"
    assert model.config.hidden_size == train_tiny.MODEL_SHAPE["hidden_size"]
    text = 'do(action="Tap", element=[500,870])'
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    ids = torch.tensor([tok.encode(text, add_special_tokens=False)])
    assert torch.isfinite(model(input_ids=ids).logits).all()


def test_options_of_past_experiments_are_gone():
    """Only the options the committed recipe uses remain; its history is in the model card."""
    import pytest

    for opt in ["--keep", "--layers", "--mlp", "--ema", "--ema-start", "--number-tokens", "--save-every"]:
        with pytest.raises(SystemExit):
            train_tiny.main([opt, "1", "--no-eval"])


def test_card_renders_from_the_committed_training_record(tmp_path):
    """The template formats with the committed training.json (older and unknown keys ignored)."""
    model = ROOT / "data" / "open-autoglm-tiny"
    info = json.loads((model / "training.json").read_text())
    (tmp_path / "training.json").write_text(json.dumps({**info, "number_tokens": 1, "some_future_key": [1]}))
    (tmp_path / "config.json").write_text((model / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1024)
    data = json.loads((model / "eval.json").read_text())
    card = train_tiny.render_card(tmp_path, data, {"Tap": [True, False], "finish": [True]}, eval_s=60.0)
    for heading in ["# open-autoglm-tiny", "## Training", "## Measured on", "## Limitations", "## History"]:
        assert "\n" + heading in "\n" + card
    assert info["command"] in card and "| Tap | 2 | 0.500 |" in card and "{" not in card  # every field filled
    assert card.index("## History") > card.index("## Limitations")


def test_loss_masks_everything_but_the_target():
    data = [([5, 6, 7, 8, 9], 2), ([1, 2, 3], 1)]
    x, y, y_lm = train_tiny.collate(data, [0, 1], pad=0)
    assert x.tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 0, 0]]
    assert y.tolist() == [[-100, -100, -100, 8, 9], [-100, -100, 3, -100, -100]]
    assert y_lm.tolist() == [[5, 6, 7, -100, -100], [1, 2, -100, -100, -100]]  # the user turn, never the pads


def test_prefix_broadcast_loss_equals_the_plain_loss():
    """The shared-prefix trick computes exactly the loss of running each full sequence."""
    from transformers import Glm4Config, Glm4ForCausalLM

    torch.manual_seed(0)
    cfg = Glm4Config(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=8, intermediate_size=64, pad_token_id=0,
                     eos_token_id=1, bos_token_id=None)
    model = Glm4ForCausalLM(cfg).eval()
    prefix = torch.randint(2, 50, (1, 6))
    data = [([7, 8, 9, 10, 11], 2), ([12, 13, 14], 2)]
    x, y, y_lm = train_tiny.collate(data, [0, 1], pad=0)
    with torch.no_grad():
        got, got_lm = train_tiny.loss_fn(model, prefix, x, y, y_lm)
        total, n, total_lm, n_lm = 0.0, 0, 0.0, 0
        P = prefix.shape[1]
        for seq, n_t in data:
            full = torch.cat([prefix[0], torch.tensor(seq)])[None]
            logp = torch.log_softmax(model(input_ids=full).logits[0], -1)
            for pos in range(P, full.shape[1]):
                nll = -float(logp[pos - 1, full[0, pos]])
                if pos >= full.shape[1] - n_t:
                    total, n = total + nll, n + 1
                else:
                    total_lm, n_lm = total_lm + nll, n_lm + 1
    assert float(got) == pytest_approx(total / n)
    assert float(got_lm) == pytest_approx(total_lm / n_lm)


def pytest_approx(v):
    import pytest

    return pytest.approx(v, rel=1e-4)


def test_tokenizer_gives_quoted_words_their_in_sentence_tokens():
    texts = ['Goal: Tell Leo Garcia "on my way"\nTextView "Leo Garcia" [495,201] click\n'
             'do(action="Type", text="on my way")'] * 20
    tok = train_tiny.train_tokenizer(texts, 300)
    goal = tok.tokenize("Tell Leo Garcia")
    screen = tok.tokenize('TextView "Leo Garcia" click')
    assert goal[-2:] == ["ĠLeo", "ĠGarcia"] and screen[screen.index("ĠLeo"):][:2] == goal[-2:]
    typed = tok.tokenize('text="on my way")')
    assert tok.tokenize("Tell on my way")[-3:] == typed[typed.index("Ġon"):][:3]
    for text in texts[0].splitlines() + ['finish(message="Sent \\"hi\\" to Leo")', '"a" "" "b"']:
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
