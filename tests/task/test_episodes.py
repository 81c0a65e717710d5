"""Tests of workbench.task.episodes: schema validation, JSONL loading and saving, hashing, screenshots."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from workbench.task.episodes import (
    EpisodeError, Node, Step, file_hash, load_steps, save_steps, step_from_json, steps_hash,
)
from workbench.task.grammar import Action

ROOT = Path(__file__).resolve().parents[2]
EVAL_PATH = ROOT / "data" / "episodes" / "eval.jsonl"
CALIB_PATH = ROOT / "data" / "episodes" / "calib.jsonl"


def node_json(**over) -> dict:
    d = {"class": "android.widget.Button", "text": "Send", "content_desc": "", "resource_id":
         "com.android.messages:id/send", "bounds": [800, 850, 960, 920], "clickable": True,
         "editable": False, "scrollable": False}
    d.update(over)
    return d


def record(**over) -> dict:
    d = {"episode_id": "ep-1", "step": 1, "goal": "Say hi to Mom", "app": "Messages",
         "history": ['do(action="Launch", app="Messages")'],
         "screen": [node_json(),
                    node_json(**{"class": "android.widget.EditText", "text": "hi", "resource_id": "",
                                 "bounds": [40, 850, 780, 920], "editable": True})],
         "target": 'do(action="Tap", element=[880,885])', "target_box": [800, 850, 960, 920]}
    d.update(over)
    return d


def write_jsonl(path: Path, objs) -> Path:
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---- the committed files ------------------------------------------------------------------------

@pytest.mark.parametrize("path,minimum", [(EVAL_PATH, 600), (CALIB_PATH, 128)],
                         ids=["eval", "calib"])
def test_committed_files_validate(path, minimum):
    steps = load_steps(path)
    assert len(steps) >= minimum
    assert all(isinstance(s, Step) for s in steps)
    for s in steps:
        assert isinstance(s.action, Action)
        assert s.action.to_text() == s.target          # targets are canonical text
        if s.action.type in ("Tap", "Long Press", "Double Tap"):
            assert s.target_box is not None


def test_committed_files_are_disjoint(eval_steps, calib_steps):
    eval_ids = {s.episode_id for s in eval_steps}
    calib_ids = {s.episode_id for s in calib_steps}
    assert eval_ids and calib_ids and not eval_ids & calib_ids


# ---- a valid hand-made record -------------------------------------------------------------------

def test_valid_record_builds_a_step():
    s = step_from_json(record())
    assert s == Step("ep-1", 1, "Say hi to Mom", "Messages", ('do(action="Launch", app="Messages")',),
                     (Node("android.widget.Button", "Send", "", "com.android.messages:id/send",
                           (800, 850, 960, 920), True, False, False),
                      Node("android.widget.EditText", "hi", "", "", (40, 850, 780, 920), True, True,
                           False)),
                     'do(action="Tap", element=[880,885])', (800, 850, 960, 920))
    assert s.action == Action("Tap", element=(880, 885))
    assert isinstance(s.history, tuple) and isinstance(s.screen, tuple)
    assert isinstance(s.target_box, tuple)


@pytest.mark.parametrize("over", [
    {"target": 'do(action="Back")', "target_box": None},
    {"target": 'finish(message="done")', "target_box": None},
    {"target": 'do(action="Back")', "target_box": [0, 0, 10, 10]},   # box allowed, not required
    {"history": [], "step": 0},
    {"screen": []},
    {"goal": "", "app": ""},
    {"target_box": [0, 0, 999, 999]},
    {"target_box": [5, 5, 5, 5]},
])
def test_valid_variants(over):
    s = step_from_json(record(**over))
    assert s.to_json() == record(**over)


def test_to_json_round_trip():
    obj = record()
    assert step_from_json(step_from_json(obj).to_json()) == step_from_json(obj)
    assert step_from_json(obj).to_json() == obj


# ---- schema errors name file, line and field ----------------------------------------------------

def _drop(key):
    def f(d):
        del d[key]
    return f


def _set(key, value):
    def f(d):
        d[key] = value
    return f


def _node(i, key, value=...):
    def f(d):
        if value is ...:
            del d["screen"][i][key]
        else:
            d["screen"][i][key] = value
    return f


SCHEMA_ERRORS = [
    ("missing goal", _drop("goal"), "goal"),
    ("missing target_box", _drop("target_box"), "target_box"),
    ("missing episode_id", _drop("episode_id"), "episode_id"),
    ("unknown field", _set("extra", 1), "extra"),
    ("step as string", _set("step", "1"), "step"),
    ("step as bool", _set("step", True), "step"),
    ("step as float", _set("step", 1.0), "step"),
    ("step negative", _set("step", -1), "step"),
    ("goal as number", _set("goal", 3), "goal"),
    ("app as null", _set("app", None), "app"),
    ("history as string", _set("history", 'do(action="Back")'), "history"),
    ("history item not a string", _set("history", [1]), "history[0]"),
    ("screen as object", _set("screen", {}), "screen"),
    ("screen item not an object", _set("screen", ["Button"]), "screen[0]"),
    ("node clickable as string", _node(0, "clickable", "yes"), "clickable"),
    ("node editable as int", _node(1, "editable", 1), "editable"),
    ("node text as null", _node(0, "text", None), "text"),
    ("node missing bounds", _node(1, "bounds"), "bounds"),
    ("node unknown field cls", _node(0, "cls", "x"), "cls"),
    ("bounds beyond 999", _node(0, "bounds", [0, 0, 1000, 10]), "bounds"),
    ("bounds negative", _node(0, "bounds", [-1, 0, 10, 10]), "bounds"),
    ("bounds x1 > x2", _node(0, "bounds", [50, 0, 10, 10]), "bounds"),
    ("bounds y1 > y2", _node(0, "bounds", [0, 50, 10, 10]), "bounds"),
    ("bounds 3 numbers", _node(0, "bounds", [0, 0, 10]), "bounds"),
    ("bounds floats", _node(0, "bounds", [0.0, 0, 10, 10]), "bounds"),
    ("bounds bools", _node(0, "bounds", [True, 0, 10, 10]), "bounds"),
    ("bounds as string", _node(0, "bounds", "0,0,10,10"), "bounds"),
    ("target_box out of range", _set("target_box", [0, 0, 10, 1000]), "target_box"),
    ("target_box x1 > x2", _set("target_box", [900, 0, 10, 10]), "target_box"),
    ("target_box 3 numbers", _set("target_box", [0, 0, 10]), "target_box"),
    ("target_box as object", _set("target_box", {"x1": 0}), "target_box"),
    ("target not an action", _set("target", "tap the send button"), "target"),
    ("target unknown action", _set("target", 'do(action="Fly")'), "target"),
    ("target out of range", _set("target", 'do(action="Tap", element=[1000,5])'), "target"),
    ("target not a string", _set("target", None), "target"),
    ("tap without target_box", _set("target_box", None), "target_box"),
]


@pytest.mark.parametrize("mutate,field", [c[1:] for c in SCHEMA_ERRORS], ids=[c[0] for c in SCHEMA_ERRORS])
def test_schema_error_names_file_line_and_field(tmp_path, mutate, field):
    bad = record()
    mutate(bad)
    path = write_jsonl(tmp_path / "mine.jsonl", [record(), bad, record()])
    with pytest.raises(EpisodeError) as info:
        load_steps(path)
    msg = str(info.value)
    assert "mine.jsonl" in msg
    assert "line 2" in msg
    assert field in msg


@pytest.mark.parametrize("mutate,field", [c[1:] for c in SCHEMA_ERRORS], ids=[c[0] for c in SCHEMA_ERRORS])
def test_step_from_json_names_where(mutate, field):
    bad = record()
    mutate(bad)
    with pytest.raises(EpisodeError, match=r"^here\.jsonl line 7: ") as info:
        step_from_json(bad, "here.jsonl line 7")
    assert field in str(info.value)


def test_tap_like_target_without_box(tmp_path):
    for kind in ("Long Press", "Double Tap"):
        bad = record(target=Action(kind, element=(880, 885)).to_text(), target_box=None)
        with pytest.raises(EpisodeError, match="target_box") as info:
            load_steps(write_jsonl(tmp_path / "b.jsonl", [bad]))
        assert "b.jsonl line 1" in str(info.value) and kind in str(info.value)


@pytest.mark.parametrize("line,what", [
    ('{"episode_id": "ep-1", ', "invalid JSON"),
    ("not json", "invalid JSON"),
    ("{'single': 'quotes'}", "invalid JSON"),
    ("[1, 2, 3]", "JSON object"),
    ('"a string"', "JSON object"),
    ("null", "JSON object"),
])
def test_invalid_json_on_line_2(tmp_path, line, what):
    path = write_jsonl(tmp_path / "broken.jsonl", [record(), line])
    with pytest.raises(EpisodeError) as info:
        load_steps(path)
    msg = str(info.value)
    assert "broken.jsonl" in msg and "line 2" in msg and what in msg


def test_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text(json.dumps(record()) + "\n\n   \n" + json.dumps(record(step="x")) + "\n")
    with pytest.raises(EpisodeError, match=r"gaps\.jsonl line 4: .*'step'"):
        load_steps(path)


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text("\n" + json.dumps(record()) + "\n\n" + json.dumps(record(step=2)) + "\n\n")
    assert [s.step for s in load_steps(path)] == [1, 2]


@pytest.mark.parametrize("content", ["", "\n", "  \n\n\t\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(EpisodeError, match="empty.jsonl"):
        load_steps(path)


@pytest.mark.parametrize("name", ["missing.jsonl", "sub/dir/missing.jsonl"])
def test_missing_file(tmp_path, name):
    with pytest.raises(EpisodeError, match="missing.jsonl"):
        load_steps(tmp_path / name)


def test_directory_is_not_an_episode_file(tmp_path):
    with pytest.raises(EpisodeError, match=tmp_path.name):
        load_steps(tmp_path)


def test_error_is_a_value_error(tmp_path):
    assert issubclass(EpisodeError, ValueError)
    with pytest.raises(ValueError):
        load_steps(tmp_path / "nope.jsonl")


def test_non_utf8_file_is_an_episode_error(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(record()).encode() + b"\n" +
                     json.dumps(record(goal="caf\u00e9"), ensure_ascii=False).encode("latin-1") + b"\n")
    with pytest.raises(EpisodeError, match="line 2"):
        load_steps(path)


# ---- save / load / limit / hash -----------------------------------------------------------------

def test_save_load_round_trip_committed(tmp_path, eval_steps):
    steps = eval_steps
    out = tmp_path / "copy.jsonl"
    save_steps(steps, out)
    assert load_steps(out) == steps       # screenshots written relative to tmp_path, resolved back
    assert not list(tmp_path.glob("*.tmp"))
    # the committed file is exactly what save_steps writes beside its screens/ folder, so its hash survives
    # load/save: a copy of data/episodes (file and PNGs) elsewhere saves to the same bytes
    shutil.copytree(EVAL_PATH.parent / "screens" / "eval", tmp_path / "clone" / "screens" / "eval")
    shutil.copy(EVAL_PATH, tmp_path / "clone" / "eval.jsonl")
    clone = load_steps(tmp_path / "clone" / "eval.jsonl")
    save_steps(clone, tmp_path / "clone" / "again.jsonl")
    assert (tmp_path / "clone" / "again.jsonl").read_bytes() == EVAL_PATH.read_bytes()
    assert file_hash(tmp_path / "clone" / "again.jsonl") == file_hash(EVAL_PATH)


def test_save_load_round_trip_odd_text(tmp_path):
    odd = ['Say "hi"\nto Mom', "Café ☕ 東京", "back\\slash", "it's", "\t"]
    steps = [step_from_json(record(goal=g, episode_id=f"e{i}", step=i, app=g,
                                   screen=[node_json(text=g, content_desc=g, resource_id=g)]))
             for i, g in enumerate(odd)]
    path = tmp_path / "odd.jsonl"
    save_steps(steps, path)
    assert load_steps(path) == steps
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(steps)   # one step per line


def test_save_overwrites(tmp_path, calib_steps):
    steps = calib_steps
    path = tmp_path / "c.jsonl"
    save_steps(steps, path)
    save_steps(steps[:3], path)
    assert load_steps(path) == steps[:3]


@pytest.mark.parametrize("limit", [1, 5, 17, 159, 160, 10_000, None])
def test_limit(limit, calib_steps):
    full = calib_steps
    got = load_steps(CALIB_PATH, limit=limit)
    assert got == full[:limit]
    assert len(got) == (len(full) if limit is None else min(limit, len(full)))


@pytest.mark.parametrize("limit", [0, -3])
def test_limit_below_one_is_refused(limit):
    with pytest.raises(EpisodeError, match="limit must be >= 1"):
        load_steps(CALIB_PATH, limit=limit)


def test_limit_stops_before_a_bad_line(tmp_path):
    path = write_jsonl(tmp_path / "tail.jsonl", [record(), record(step=2), "garbage"])
    assert [s.step for s in load_steps(path, limit=2)] == [1, 2]
    with pytest.raises(EpisodeError, match="line 3"):
        load_steps(path)


def test_file_hash(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_bytes(EVAL_PATH.read_bytes())
    h = file_hash(a)
    assert h == hashlib.sha256(EVAL_PATH.read_bytes()).hexdigest()
    assert len(h) == 64 and int(h, 16) >= 0
    assert file_hash(a) == h == file_hash(str(a))             # stable, str or Path
    assert file_hash(EVAL_PATH) == h                          # depends on content, not path
    data = bytearray(a.read_bytes())
    data[100] ^= 1
    a.write_bytes(bytes(data))
    assert file_hash(a) != h
    assert file_hash(CALIB_PATH) != file_hash(EVAL_PATH)


@pytest.mark.parametrize("bounds,center", [
    ((0, 0, 999, 999), (499, 499)),
    ((800, 850, 960, 920), (880, 885)),
    ((10, 20, 31, 41), (20, 30)),        # floor of the midpoint
    ((5, 5, 5, 5), (5, 5)),
    ((998, 998, 999, 999), (998, 998)),
])
def test_node_center(bounds, center):
    n = Node("android.view.View", "", "", "", bounds, False, False, False)
    assert n.center == center
    x1, y1, x2, y2 = bounds
    assert x1 <= n.center[0] <= x2 and y1 <= n.center[1] <= y2


def test_node_to_json_uses_class_key():
    n = step_from_json(record()).screen[0]
    d = n.to_json()
    assert d["class"] == "android.widget.Button" and "cls" not in d
    assert d["bounds"] == [800, 850, 960, 920]
    assert d == node_json()


def test_step_is_frozen():
    s = step_from_json(record())
    with pytest.raises(AttributeError):
        s.goal = "x"  # type: ignore[misc]


def test_task_package_imports_without_torch():
    code = "import sys, workbench.task; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)



# ---- screenshots --------------------------------------------------------------------------------

def png_bytes(size=(36, 80), color="white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def shot(folder: Path, rel="shots/a.png", data: bytes | None = None) -> str:
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    (folder / rel).write_bytes(png_bytes() if data is None else data)
    return rel


def test_record_with_screenshot_loads_absolute(tmp_path):
    rel = shot(tmp_path)
    path = write_jsonl(tmp_path / "mine.jsonl", [record(screenshot=rel)])
    (s,) = load_steps(path)
    assert s.screenshot == (tmp_path / "shots" / "a.png").resolve()
    assert s.screenshot.is_absolute()
    assert s.screen == step_from_json(record()).screen     # the tree is kept when given
    assert dataclasses.replace(s, screenshot=None) == step_from_json(record())


def test_screenshot_without_tree_loads(tmp_path):
    rel = shot(tmp_path)
    bare = record(screenshot=rel)
    del bare["screen"]
    (s,) = load_steps(write_jsonl(tmp_path / "mine.jsonl", [bare]))
    assert s.screen == () and s.screenshot == (tmp_path / rel).resolve()
    assert s.target_box == (800, 850, 960, 920) and s.action == Action("Tap", element=(880, 885))


def test_tree_required_without_screenshot(tmp_path):
    bare = record()
    del bare["screen"]
    with pytest.raises(EpisodeError, match=r"mine\.jsonl line 1: missing field 'screen' \(required unless"):
        load_steps(write_jsonl(tmp_path / "mine.jsonl", [bare]))


def test_screenshot_does_not_excuse_a_missing_target_box(tmp_path):
    bare = record(screenshot=shot(tmp_path), target_box=None)
    del bare["screen"]
    with pytest.raises(EpisodeError, match=r"mine\.jsonl line 1: field 'target_box' is required for a Tap"):
        load_steps(write_jsonl(tmp_path / "mine.jsonl", [bare]))


def test_screenshot_is_allowed_in_the_unknown_field_message(tmp_path):
    with pytest.raises(EpisodeError, match=r"unknown field 'shot' \(allowed: .*screenshot"):
        load_steps(write_jsonl(tmp_path / "mine.jsonl", [record(shot="a.png")]))


def _truncated(folder):
    data = png_bytes((200, 300), "red")
    return shot(folder, data=data[: len(data) // 2])


def _flipped(folder):
    data = bytearray(png_bytes((200, 300), "red"))
    data[len(data) // 2] ^= 0xFF          # inside IDAT: the chunk's CRC no longer matches
    return shot(folder, data=bytes(data))


def _jpeg(folder):
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, format="JPEG")
    return shot(folder, data=buf.getvalue())


def _signature_then_garbage(folder):
    return shot(folder, data=b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)


def _directory(folder):
    (folder / "shots" / "dir.png").mkdir(parents=True)
    return "shots/dir.png"


SHOT_ERRORS = [  # (id, make(folder) -> the record's screenshot value, fragments of the message)
    ("number", lambda f: 3, ["has type int"]),
    ("null", lambda f: None, ["has type NoneType"]),
    ("list", lambda f: ["a.png"], ["has type list"]),
    ("empty", lambda f: "", ["empty path"]),
    ("absolute", lambda f: str((f / shot(f)).resolve()), ["relative path", "absolute paths are refused"]),
    ("backslashes", lambda f: shot(f).replace("/", "\\"), ["relative path with '/' separators"]),
    ("windows drive", lambda f: "C:/shots/a.png", ["absolute paths are refused"]),
    ("missing", lambda f: "shots/none.png", ["not found", "none.png", "render_screens.py", "gen_episodes.py"]),
    ("escaping and missing", lambda f: "../elsewhere/none.png", ["not found", "elsewhere"]),
    ("directory", lambda f: _directory(f), ["is not a file"]),
    ("text file", lambda f: shot(f, data=b"hello, not an image\n"), ["not a PNG", "signature"]),
    ("empty file", lambda f: shot(f, data=b""), ["not a PNG"]),
    ("jpeg", _jpeg, ["not a PNG"]),
    ("truncated", _truncated, ["truncated or corrupt PNG"]),
    ("flipped byte", _flipped, ["truncated or corrupt PNG"]),
    ("signature then garbage", _signature_then_garbage, ["truncated or corrupt PNG"]),
    ("too narrow", lambda f: shot(f, data=png_bytes((27, 100))), ["27 x 100 px", "28..8192", "GLM-4.1V"]),
    ("too short", lambda f: shot(f, data=png_bytes((100, 12))), ["100 x 12 px", "28..8192"]),
    ("too wide", lambda f: shot(f, data=png_bytes((8193, 28))), ["8193 x 28 px", "14-px patch"]),
]


@pytest.mark.parametrize("make,fragments", [c[1:] for c in SHOT_ERRORS], ids=[c[0] for c in SHOT_ERRORS])
def test_screenshot_error_names_file_line_and_field(tmp_path, make, fragments):
    value = make(tmp_path)
    good = record(screenshot=shot(tmp_path, "shots/good.png"))
    path = write_jsonl(tmp_path / "mine.jsonl", [good, record(screenshot=value), good])
    with pytest.raises(EpisodeError) as info:
        load_steps(path)
    msg = str(info.value)
    assert msg.startswith("mine.jsonl line 2: field 'screenshot'"), msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


@pytest.mark.parametrize("make,fragments", [c[1:] for c in SHOT_ERRORS], ids=[c[0] for c in SHOT_ERRORS])
def test_screenshot_error_without_tree(tmp_path, make, fragments):
    """The same checks hold when the screenshot is all the record has."""
    bad = record(screenshot=make(tmp_path))
    del bad["screen"]
    with pytest.raises(EpisodeError, match=r"^here\.jsonl line 7: field 'screenshot'") as info:
        step_from_json(bad, "here.jsonl line 7", base=tmp_path)
    assert all(frag in str(info.value) for frag in fragments)


def test_missing_screenshot_names_the_resolved_path(tmp_path):
    (tmp_path / "data").mkdir()
    path = write_jsonl(tmp_path / "data" / "mine.jsonl", [record(screenshot="../shots/x.png")])
    with pytest.raises(EpisodeError) as info:
        load_steps(path)
    assert str((tmp_path / "shots" / "x.png").resolve()) in str(info.value)


def test_unreadable_screenshot(tmp_path, monkeypatch):
    rel = shot(tmp_path)
    target = (tmp_path / rel).resolve()
    real_open = Path.open

    def deny(self, *a, **k):           # chmod does not stop root, so refuse the read here
        if self == target:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *a, **k)

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(EpisodeError, match=r"mine\.jsonl line 1: field 'screenshot': cannot read .*Permission denied"):
        load_steps(write_jsonl(tmp_path / "mine.jsonl", [record(screenshot=rel)]))


def test_step_from_json_resolves_against_base_or_cwd(tmp_path, monkeypatch):
    rel = shot(tmp_path)
    assert step_from_json(record(screenshot=rel), base=tmp_path).screenshot == (tmp_path / rel).resolve()
    monkeypatch.chdir(tmp_path)
    s = step_from_json(record(screenshot=rel))
    assert s.screenshot == (tmp_path / rel).resolve()
    assert s.to_json() == record(screenshot=rel)            # to_json's default base is the cwd too
    with pytest.raises(EpisodeError, match="not found"):
        step_from_json(record(screenshot=rel), base=tmp_path / "shots")


def test_escaping_path_is_allowed(tmp_path):
    rel = shot(tmp_path, "screens/a.png")
    (tmp_path / "sub").mkdir()
    path = write_jsonl(tmp_path / "sub" / "mine.jsonl", [record(screenshot="../" + rel)])
    assert load_steps(path)[0].screenshot == (tmp_path / rel).resolve()


def test_save_load_keeps_the_relative_path(tmp_path):
    folder = tmp_path / "eps"
    folder.mkdir()
    rel = shot(folder, "screens/eval/ep-1-1.png")
    src = write_jsonl(folder / "a.jsonl", [record(screenshot=rel), record(step=2)])
    steps = load_steps(src)
    save_steps(steps, folder / "b.jsonl")
    lines = (folder / "b.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["screenshot"] == "screens/eval/ep-1-1.png"
    assert "screenshot" not in json.loads(lines[1])                 # only when set
    assert list(json.loads(lines[0]))[-1] == "screenshot"           # after the other fields
    assert load_steps(folder / "b.jsonl") == steps
    # written elsewhere, the path is relative to the new file's folder (posix separators) and resolves back
    save_steps(steps, tmp_path / "c.jsonl")
    assert json.loads((tmp_path / "c.jsonl").read_text().splitlines()[0])["screenshot"] == "eps/" + rel
    (tmp_path / "deep" / "er").mkdir(parents=True)
    save_steps(steps, tmp_path / "deep" / "er" / "d.jsonl")
    d = json.loads((tmp_path / "deep" / "er" / "d.jsonl").read_text().splitlines()[0])
    assert d["screenshot"] == "../../eps/" + rel
    assert load_steps(tmp_path / "deep" / "er" / "d.jsonl") == steps == load_steps(tmp_path / "c.jsonl")


def test_to_json_base(tmp_path):
    rel = shot(tmp_path, "x/y/z.png")
    s = step_from_json(record(screenshot=rel), base=tmp_path)
    assert s.to_json(tmp_path)["screenshot"] == "x/y/z.png"
    assert s.to_json(tmp_path / "x")["screenshot"] == "y/z.png"
    assert s.to_json(str(tmp_path / "q"))["screenshot"] == "../x/y/z.png"
    assert "screenshot" not in step_from_json(record()).to_json(tmp_path)
    assert step_from_json(s.to_json(tmp_path / "x"), base=tmp_path / "x") == s


def _old_steps_hash(steps) -> str:
    """steps_hash before screenshots existed."""
    h = hashlib.sha256()
    for s in steps:
        h.update(json.dumps(s.to_json(), sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return h.hexdigest()


def test_steps_hash_without_screenshots_is_unchanged():
    steps = [step_from_json(record()), step_from_json(record(step=2, goal="x"))]
    assert steps_hash(steps) == _old_steps_hash(steps)
    assert len(steps_hash(steps)) == 64


def test_steps_hash_is_location_independent(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    rel = shot(a, "screens/one.png", png_bytes((40, 40), "blue"))
    write_jsonl(a / "eps.jsonl", [record(screenshot=rel), record(step=2)])
    shutil.copytree(a, tmp_path / "b" / "deeper")
    sa, sb = load_steps(a / "eps.jsonl"), load_steps(tmp_path / "b" / "deeper" / "eps.jsonl")
    assert sa != sb                                           # the absolute paths differ ...
    assert steps_hash(sa) == steps_hash(sb)                   # ... the data key does not
    assert steps_hash(sa) != steps_hash([dataclasses.replace(s, screenshot=None) for s in sa])
    assert steps_hash(sa[:1]) != steps_hash(sa[1:])
    # the PNG's content enters the key
    (tmp_path / "b" / "deeper" / rel).write_bytes(png_bytes((40, 40), "green"))
    assert steps_hash(load_steps(tmp_path / "b" / "deeper" / "eps.jsonl")) != steps_hash(sa)


def test_steps_hash_sees_a_rewritten_png(tmp_path):
    rel = shot(tmp_path, data=png_bytes((40, 40), "blue"))
    steps = load_steps(write_jsonl(tmp_path / "m.jsonl", [record(screenshot=rel)]))
    before = steps_hash(steps)
    assert steps_hash(steps) == before                        # stable (and cached)
    time.sleep(0.01)
    (tmp_path / rel).write_bytes(png_bytes((40, 41), "blue"))
    os.utime(tmp_path / rel, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert steps_hash(steps) != before


def test_committed_steps_hash_equals_a_copy_elsewhere(tmp_path, calib_steps):
    shutil.copytree(CALIB_PATH.parent / "screens" / "calib", tmp_path / "x" / "screens" / "calib")
    shutil.copy(CALIB_PATH, tmp_path / "x" / "calib.jsonl")
    copy = load_steps(tmp_path / "x" / "calib.jsonl")
    assert [s.screenshot.name for s in copy] == [s.screenshot.name for s in calib_steps]
    assert all(str(s.screenshot).startswith(str(tmp_path)) for s in copy)
    assert steps_hash(copy) == steps_hash(calib_steps)
    assert steps_hash(copy[:10]) == steps_hash(calib_steps[:10]) != steps_hash(calib_steps[:11])


@pytest.mark.parametrize("path,split", [(EVAL_PATH, "eval"), (CALIB_PATH, "calib")], ids=["eval", "calib"])
def test_committed_files_carry_screenshots(path, split):
    steps = load_steps(path)
    folder = (path.parent / "screens" / split).resolve()
    for s in steps:
        assert s.screenshot is not None, (s.episode_id, s.step)
        assert s.screenshot.is_file()
        assert s.screenshot == folder / f"{s.episode_id}-{s.step}.png"
        assert len(s.screen) >= 10                                 # the tree is kept beside the screenshot
    for line in path.read_text(encoding="utf-8").splitlines():
        assert json.loads(line)["screenshot"].startswith(f"screens/{split}/")
    # the folder holds exactly the referenced files
    assert sorted(p.name for p in folder.iterdir()) == sorted(s.screenshot.name for s in steps)


def test_committed_screenshots_validate_fast():
    load_steps(CALIB_PATH)                                    # warm up imports and the file cache
    t0 = time.perf_counter()
    steps = load_steps(EVAL_PATH)
    elapsed = time.perf_counter() - t0
    assert len(steps) >= 600 and all(s.screenshot for s in steps)
    assert elapsed < 3.0, f"validating {len(steps)} steps with screenshots took {elapsed:.2f} s"
