"""Tests of scripts/gen_episodes.py: the seeded generator of the committed episode files."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from workbench.task.episodes import load_steps, step_from_json
from workbench.task.grammar import ACTION_TYPES, TAP_LIKE
from workbench.task.metrics import score_step

ROOT = Path(__file__).resolve().parents[2]
EVAL_PATH = ROOT / "data" / "episodes" / "eval.jsonl"
CALIB_PATH = ROOT / "data" / "episodes" / "calib.jsonl"


def episodes_of(steps) -> dict[str, list]:
    out: dict[str, list] = {}
    for s in steps:
        out.setdefault(s.episode_id, []).append(s)
    return out


@pytest.fixture(params=["generated", "committed"])
def steps(request, generated_eval, eval_steps):
    """Properties hold for fresh generator output and for the committed eval file alike."""
    return generated_eval if request.param == "generated" else eval_steps


# ---- determinism and the committed files --------------------------------------------------------

def test_deterministic(gen):
    a, b = gen.generate("eval", 300), gen.generate("eval", 300)
    assert a == b
    assert [s.to_json() for s in a] == [s.to_json() for s in b]


@pytest.mark.parametrize("split,other", [("eval", "calib"), ("eval", "train"), ("calib", "train")])
def test_splits_differ(gen, split, other):
    a, b = gen.generate(split, 200), gen.generate(other, 200)
    assert [s.to_json() | {"episode_id": ""} for s in a] != [s.to_json() | {"episode_id": ""} for s in b]
    assert {s.episode_id for s in a}.isdisjoint({s.episode_id for s in b})
    assert all(s.episode_id.startswith(f"{split}-0-") for s in a)


def test_seeds_differ(gen):
    a, b = gen.generate("eval", 200, seed=0), gen.generate("eval", 200, seed=1)
    assert [s.goal for s in a] != [s.goal for s in b]
    assert all(s.episode_id.startswith("eval-1-") for s in b)


@pytest.mark.parametrize("n", [1, 10, 200, 641])
def test_whole_episodes_of_at_least_n_steps(gen, n):
    out = gen.generate("eval", n)
    assert len(out) >= n
    assert out[-1].action.type == "finish"
    longest = max(len(v) for v in episodes_of(out).values())
    assert len(out) - n < longest
    # a shorter run is a prefix of a longer one (one stream of episodes)
    assert gen.generate("eval", 2 * n)[: len(out)] == out


@pytest.mark.parametrize("path,split,n", [(EVAL_PATH, "eval", 640), (CALIB_PATH, "calib", 160)],
                         ids=["eval", "calib"])
def test_committed_file_equals_generator(gen, path, split, n):
    committed = load_steps(path)
    assert all(s.screenshot is not None for s in committed)       # drawn by the CLI (--screens)
    assert [replace(s, screenshot=None) for s in committed] == gen.generate(split, n)


def test_cli_writes_what_generate_returns(gen, tmp_path, capsys):
    out = tmp_path / "calib.jsonl"
    gen.main(["--split", "calib", "--steps", "30", "--out", str(out)])
    got = load_steps(out)
    assert [replace(s, screenshot=None) for s in got] == gen.generate("calib", 30)
    assert [s.screenshot for s in got] == [(tmp_path / "screens" / "calib" / f"{s.episode_id}-{s.step}.png").resolve()
                                           for s in got]
    # the same pictures as the committed calib split's
    committed = {s.screenshot.name: s.screenshot for s in load_steps(CALIB_PATH)}
    assert all(s.screenshot.read_bytes() == committed[s.screenshot.name].read_bytes() for s in got)
    assert str(out) in capsys.readouterr().out


def test_cli_screens_options(gen, tmp_path):
    gen.main(["--split", "calib", "--steps", "3", "--out", str(tmp_path / "a.jsonl"), "--no-screens"])
    assert all(s.screenshot is None for s in load_steps(tmp_path / "a.jsonl"))
    assert not (tmp_path / "screens").exists()
    gen.main(["--split", "calib", "--steps", "3", "--out", str(tmp_path / "b.jsonl"), "--screens", str(tmp_path / "png")])
    got = load_steps(tmp_path / "b.jsonl")
    assert all(s.screenshot.parent == (tmp_path / "png").resolve() for s in got)
    assert (tmp_path / "b.jsonl").read_text().count('"screenshot":"png/') == len(got)
    with pytest.raises(SystemExit):
        gen.main(["--split", "calib", "--steps", "3", "--out", str(tmp_path / "c.jsonl"), "--no-screens",
                  "--screens", "x"])


# ---- coverage -----------------------------------------------------------------------------------

def test_every_action_type_occurs(generated_eval):
    assert len(generated_eval) >= 2000
    counts = Counter(s.action.type for s in generated_eval)
    assert set(ACTION_TYPES) <= set(counts)
    assert all(counts[t] >= 5 for t in ACTION_TYPES), counts


def test_at_least_12_apps(steps):
    after_launch = {s.app for s in steps if s.step > 0} - {"Home screen"}
    launched = {s.action.app for s in steps if s.action.type == "Launch"}
    assert len(after_launch) >= 12
    assert len(launched) >= 12


def test_goals_vary(steps):
    goals = {s.goal for s in steps}
    assert len(goals) >= len(episodes_of(steps)) // 3


# ---- screens and targets ------------------------------------------------------------------------

def test_screen_sizes(steps):
    sizes = [len(s.screen) for s in steps]
    assert min(sizes) >= 10 and max(sizes) <= 60


def test_generated_steps_validate(generated_eval):
    for s in generated_eval:
        assert step_from_json(s.to_json()) == s
        assert s.action.to_text() == s.target


def test_tap_like_targets_sit_on_screen_nodes(steps):
    n = 0
    for s in steps:
        a = s.action
        if a.type not in TAP_LIKE:
            assert s.target_box is None
            continue
        n += 1
        assert s.target_box is not None
        x1, y1, x2, y2 = s.target_box
        assert a.element == ((x1 + x2) // 2, (y1 + y2) // 2)
        owners = [nd for nd in s.screen if nd.bounds == s.target_box]
        assert owners, f"{s.episode_id} step {s.step}: target box is no node's bounds"
        assert any(nd.clickable for nd in owners)
        assert any(nd.center == a.element for nd in owners)
    assert n > 0


def test_every_target_matches_itself(steps):
    for s in steps:
        score = score_step(s.target, s.target, s.target_box)
        assert score.parsed and score.type_ok and score.step_ok and score.exact


# ---- episodes -----------------------------------------------------------------------------------

def test_episodes_are_multi_step_with_history(steps):
    eps = episodes_of(steps)
    assert len(eps) >= 2
    seen_ids = []
    for s in steps:                       # an episode's steps are contiguous in the file
        if not seen_ids or seen_ids[-1] != s.episode_id:
            assert s.episode_id not in seen_ids
            seen_ids.append(s.episode_id)
    for eid, ep in eps.items():
        assert len(ep) >= 3, eid
        assert [s.step for s in ep] == list(range(len(ep)))
        assert len({s.goal for s in ep}) == 1
        for k, s in enumerate(ep):
            assert s.history == tuple(p.target for p in ep[:k])
        first, last = ep[0].action, ep[-1].action
        assert first.type == "Launch"
        assert ep[0].app != first.app            # the task app is not yet in the foreground
        assert ep[1].app == first.app            # ... and is after the launch
        assert last.type == "finish" and last.message
        assert all(s.action.type != "finish" for s in ep[:-1])


def test_type_follows_a_tap_on_an_editable_field(steps):
    n = 0
    for ep in episodes_of(steps).values():
        for prev, s in zip(ep, ep[1:]):
            if s.action.type != "Type":
                continue
            n += 1
            assert prev.action.type == "Tap"
            field = [nd for nd in prev.screen if nd.bounds == prev.target_box]
            assert any(nd.editable for nd in field)
            assert any(nd.editable and nd.bounds == prev.target_box for nd in s.screen)
            assert s.action.text
    assert n > 0


def test_wait_steps_show_a_loading_screen(steps):
    waits = [s for s in steps if s.action.type == "Wait"]
    assert waits
    for s in waits:
        assert any(nd.cls.endswith("ProgressBar") for nd in s.screen)
        assert s.action.duration


def test_swipes_scroll_up_or_page_left(steps):
    swipes = [s for s in steps if s.action.type == "Swipe"]
    assert swipes
    assert {s.action.swipe_direction() for s in swipes} <= {"up", "left"}
