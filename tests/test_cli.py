"""`workbench evaluate`: the JSON report on the default model, and one-line errors with exit code 2."""
import json
import subprocess
import sys

import pytest

from workbench.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_evaluate_json_on_the_default_model():
    r = run("evaluate", "--limit", "8", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"accuracy", "latency", "memory", "provenance"}
    assert data["accuracy"]["n"] == 8
    assert 0.75 <= data["accuracy"]["type"] <= 1.0
    assert data["latency"]["decode_ms_per_token"] > 0
    assert data["provenance"]["model"] == "open-autoglm-tiny"


@pytest.mark.parametrize("args, needle", [
    (["--model", "/nonexistent/glm"], "does not exist"),
    (["--episodes", "/nonexistent/eval.jsonl"], "episode file not found"),
    (["--limit", "0"], "--limit must be >= 1"),
])
def test_bad_input_exits_2_with_one_line(args, needle, capsys):
    code = main(["evaluate", *args, "--json"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("workbench: error:")
    assert needle in err


def test_bad_episode_line_is_named(tmp_path, capsys):
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"episode_id": "e", "step": 0}\n')
    assert main(["evaluate", "--episodes", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "mine.jsonl line 1" in err and "missing field" in err
