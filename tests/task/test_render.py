"""Tests of workbench.task.render (screenshots drawn from accessibility trees) and scripts/render_screens.py."""
from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from workbench.task.episodes import EpisodeError, Node, load_steps, step_from_json
from workbench.task.grammar import TAP_LIKE
from workbench.task.render import (
    SCREEN_SIZE, render_png, render_screen, screenshot_name, write_png, write_screenshots,
)

ROOT = Path(__file__).resolve().parents[2]
EVAL_PATH = ROOT / "data" / "episodes" / "eval.jsonl"
CALIB_PATH = ROOT / "data" / "episodes" / "calib.jsonl"
W, H = SCREEN_SIZE


def node(cls="android.widget.TextView", text="", desc="", rid="", b=(0, 0, 999, 999), click=False, edit=False,
         scroll=False) -> Node:
    return Node(cls if "." in cls else f"android.widget.{cls}", text, desc, rid, b, click, edit, scroll)


def px(b):
    """Pixel box of 0..999 bounds at the default size, as the renderer maps them."""
    x1, y1, x2, y2 = b
    return (round(x1 * W / 1000), round(y1 * H / 1000), round((x2 + 1) * W / 1000), round((y2 + 1) * H / 1000))


def changed(a: Image.Image, b: Image.Image, box=None) -> int:
    """Number of pixels that differ between a and b (inside the pixel box, if given)."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    if box is not None:
        diff = diff.crop(box)
    return sum(1 for p in diff.getdata() if p != (0, 0, 0))


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        assert zlib.crc32(data[i + 4:i + 8 + n]) == struct.unpack(">I", data[i + 8 + n:i + 12 + n])[0]
        out.append(kind)
        i += 12 + n
    return out


# ---- basics ---------------------------------------------------------------------------------------

def test_screen_size_is_a_third_of_1080_by_2400():
    assert SCREEN_SIZE == (360, 800) == (1080 // 3, 2400 // 3)


def test_render_returns_an_rgb_image_of_the_size(eval_steps):
    img = render_screen(eval_steps[0])
    assert img.mode == "RGB" and img.size == SCREEN_SIZE
    big = render_screen(eval_steps[0], size=(720, 1600))
    assert big.size == (720, 1600)
    assert len(set(img.getdata())) > 20                      # text, icons, bars: not a flat picture


def test_step_and_nodes_render_alike(eval_steps):
    s = eval_steps[3]
    assert render_png(s) == render_png(list(s.screen)) == render_png(iter(s.screen))
    with pytest.raises(TypeError, match="Step or Nodes"):
        render_screen(["not a node"])


@pytest.mark.parametrize("size", [(27, 800), (360, 10)])
def test_too_small_a_size_is_refused(size):
    with pytest.raises(ValueError, match="28"):
        render_screen([], size=size)


def test_empty_tree_is_a_blank_screen():
    img = render_screen([])
    assert img.size == SCREEN_SIZE and img.getcolors() == [(W * H, (255, 255, 255))]


# ---- determinism ----------------------------------------------------------------------------------

def test_render_twice_gives_the_same_bytes(eval_steps):
    for s in eval_steps[:12]:
        assert render_png(s) == render_png(s)
    assert render_png(eval_steps[0]) != render_png(eval_steps[1])


def test_png_has_no_metadata(eval_steps):
    data = render_png(eval_steps[0])
    kinds = chunks(data)
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert set(kinds) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND"}, kinds   # no tIME, tEXt, pHYs ...
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.mode == "P" and img.size == SCREEN_SIZE
    assert not {k for k in img.info if k != "transparency"}


def test_palette_keeps_the_picture(eval_steps):
    """The 256-colour PNG decodes to within a few levels of the full-colour drawing (a launcher screen,
    the most colourful, included): under 0.1 % of the pixels are more than 12 levels off."""
    for s in eval_steps[:4]:
        diff = ImageChops.difference(decode(render_png(s)), render_screen(s)).convert("L")
        hist = diff.histogram()
        assert sum(hist[13:]) < 0.001 * W * H, (s.episode_id, s.step)
        assert sum(i * c for i, c in enumerate(hist)) / (W * H) < 0.1


def test_shipped_png_of_the_first_eval_step_equals_a_fresh_render(eval_steps):
    s = eval_steps[0]
    assert s.screenshot.name == "eval-0-00000-0.png"
    shipped = Image.open(s.screenshot)
    assert shipped.size == SCREEN_SIZE
    assert shipped.convert("RGB").tobytes() == decode(render_png(s)).tobytes(), (
        "the shipped screenshot differs from a fresh drawing: re-run "
        "`python scripts/render_screens.py --episodes data/episodes/eval.jsonl` (a renderer or Pillow change)")


@pytest.mark.parametrize("path", [EVAL_PATH, CALIB_PATH], ids=["eval", "calib"])
def test_shipped_pngs_are_small_palette_screens(path):
    steps = load_steps(path)
    sizes = [s.screenshot.stat().st_size for s in steps]
    assert max(sizes) < 20_000 and sum(sizes) / len(sizes) < 8_000
    for s in steps[:: max(1, len(steps) // 25)]:
        with Image.open(s.screenshot) as im:
            assert im.size == SCREEN_SIZE and im.mode == "P"


# ---- what is drawn where --------------------------------------------------------------------------

def _first_of_each_target_kind(steps):
    seen, out = set(), []
    for s in steps:
        if s.action.type not in TAP_LIKE:
            continue
        owner = next(n for n in s.screen if n.bounds == s.target_box)
        kind = (owner.cls, owner.resource_id.rsplit("/", 1)[-1], owner.content_desc)
        if kind not in seen:
            seen.add(kind)
            out.append(s)
    return out


def test_the_target_element_is_drawn(eval_steps):
    """For every kind of tap target: its region is not flat, and drawing the tree without the target's
    node(s) changes that region (the element itself is painted there, not only its neighbours)."""
    picked = _first_of_each_target_kind(eval_steps)
    assert len(picked) >= 20
    for s in picked:
        img = render_screen(s)
        box = px(s.target_box)
        region = img.crop(box)
        assert len(region.getcolors(maxcolors=1 << 16)) > 1, (s.episode_id, s.step)
        without = render_screen([n for n in s.screen if n.bounds != s.target_box])
        n_changed = changed(img, without, box)
        area = (box[2] - box[0]) * (box[3] - box[1])
        assert n_changed >= min(30, area // 4), (s.episode_id, s.step, s.target_box, n_changed)
        # nothing outside the target's box changes when it is removed (drawn inside its bounds),
        # unless the target is a status/nav icon that shares a bar with others
        outside = changed(img, without) - n_changed
        assert outside <= 2 * (box[2] - box[0] + box[3] - box[1]), (s.episode_id, s.step, outside)


@pytest.mark.parametrize("n", [
    node("Button", "Add to cart", rid="x:id/add_to_cart", b=(583, 771, 783, 841), click=True),
    node("Button", "Cancel", rid="x:id/cancel", b=(583, 671, 783, 741), click=True),
    node("EditText", "Search products", rid="x:id/search_src_text", b=(40, 200, 960, 270), click=True, edit=True),
    node("EditText", "on my way", rid="x:id/compose", b=(40, 200, 960, 270), click=True, edit=True),
    node("Switch", "ON", rid="x:id/switch_widget", b=(800, 300, 950, 380), click=True),
    node("Switch", "OFF", rid="x:id/switch_widget", b=(800, 300, 950, 380), click=True),
    node("CheckBox", "Remember me", b=(40, 300, 700, 360), click=True),
    node("RadioButton", "CHECKED", b=(40, 300, 200, 360), click=True),
    node("ImageButton", desc="Search", rid="x:id/action_search", b=(780, 50, 860, 110), click=True),
    node("ImageButton", desc="More options", rid="x:id/action_more", b=(880, 50, 970, 110), click=True),
    node("ImageButton", desc="New note", rid="x:id/fab_new", b=(820, 820, 940, 920), click=True),
    node("ImageButton", desc="Send", rid="x:id/send", b=(860, 200, 960, 270), click=True),
    node("ImageButton", desc="Delete", rid="x:id/delete", b=(760, 50, 840, 110), click=True),
    node("ImageButton", desc="Something new", b=(400, 400, 480, 460), click=True),
    node("ImageButton", desc="Shutter", rid="x:id/shutter", b=(438, 800, 568, 930), click=True),
    node("ImageView", desc="Product photo", b=(100, 140, 900, 520)),
    node("ImageView", desc="Map view", rid="x:id/map", b=(0, 120, 999, 600), scroll=True),
    node("ImageView", desc="Battery 5 percent", b=(900, 0, 980, 28)),
    node("ImageView", desc="Wi-Fi signal full", b=(820, 0, 890, 28)),
    node("ProgressBar", desc="Loading", b=(420, 420, 580, 580)),
    node("android.view.SurfaceView", desc="Camera preview", b=(0, 40, 999, 780)),
    node("android.inputmethodservice.KeyboardView", desc="Keyboard", b=(0, 600, 999, 940)),
    node("TextView", "Saved", rid="x:id/snackbar", b=(40, 840, 960, 910)),
    node("TextView", "Network & internet", rid="x:id/title", b=(40, 300, 700, 370), click=True),
    node("TextView", "17", b=(300, 300, 420, 390), click=True),
    node("TextView", "Mail", desc="Mail", b=(40, 200, 240, 350), click=True),
], ids=lambda n: f"{n.cls.rsplit('.', 1)[-1]}:{n.text or n.content_desc}")
def test_every_kind_of_node_paints_inside_its_box(n):
    base = [node("TextView", "9:41", rid="android:id/clock", b=(20, 0, 120, 28))]
    img, without = render_screen(base + [n]), render_screen(base)
    box = px(n.bounds)
    inside = changed(img, without, box)
    assert inside >= 20, inside
    # a launcher icon (text == content_desc) turns the page into a wallpaper, a camera preview turns
    # it black; otherwise nothing is painted outside the node's box
    if (n.text != n.content_desc or not n.text) and not n.cls.endswith("SurfaceView"):
        assert changed(img, without) == inside, "painted outside the node's bounds"


def test_text_is_ellipsized_inside_its_box():
    long = "A very long label that cannot possibly fit into such a narrow box " * 3
    b = (100, 400, 400, 460)
    img, without = render_screen([node("TextView", long, b=b)]), render_screen([])
    box = px(b)
    assert changed(img, without, box) > 30
    assert changed(img, without) == changed(img, without, box)   # nothing spills out of the box


def test_text_in_a_tiny_box_is_not_drawn_outside_it():
    b = (500, 500, 505, 502)
    assert changed(render_screen([node("TextView", "hidden", b=b)]), render_screen([])) == 0


@pytest.mark.parametrize("layout", ["android.widget.FrameLayout", "android.widget.LinearLayout",
                                    "android.view.ViewGroup", "androidx.constraintlayout.widget.ConstraintLayout"])
def test_layout_containers_do_not_paint_over_content(layout):
    content = [node("TextView", "Inbox", rid="x:id/toolbar_title", b=(40, 50, 600, 110)),
               node("Button", "Save", rid="x:id/save", b=(500, 700, 700, 770), click=True),
               node("TextView", "Mom", rid="x:id/sender", b=(30, 200, 960, 270), click=True)]
    full = node(layout, b=(0, 0, 999, 999))
    band = node(layout, b=(120, 0, 999, 940))
    plain = render_png(content)
    assert render_png([full, band] + content) == plain          # containers first, as trees list them
    assert render_png(content + [full, band]) == plain          # ... or last: still no fill


def test_scrollable_list_shows_a_scrollbar_behind_its_rows():
    rows = [node("TextView", f"Row {i}", rid="x:id/row", b=(30, 200 + 80 * i, 960, 274 + 80 * i), click=True)
            for i in range(5)]
    lst = node("androidx.recyclerview.widget.RecyclerView", rid="x:id/list", b=(0, 190, 999, 930), scroll=True)
    img, without = render_screen([lst] + rows), render_screen(rows)
    x1, y1, x2, y2 = px(lst.bounds)
    assert changed(img, without, (x2 - 12, y1, x2, y2)) > 20   # the thumb at the right edge
    assert changed(img, without) == changed(img, without, (x2 - 12, y1, x2, y2))


def test_status_and_navigation_bars(eval_steps):
    s = eval_steps[1]
    img = render_screen(s)
    for nav in [n for n in s.screen if n.resource_id in ("android:id/back", "android:id/home")]:
        colors = img.crop(px(nav.bounds)).getcolors(maxcolors=1 << 16)
        assert len(colors) >= 2 and min(c for c, _ in colors) >= 30       # an icon on the bar
    clock = next(n for n in s.screen if n.resource_id == "android:id/clock")
    assert changed(img, render_screen([n for n in s.screen if n is not clock]), px(clock.bounds)) > 20


def test_focused_field_shows_a_cursor():
    field = node("EditText", "Text message", rid="x:id/compose", b=(40, 200, 960, 270), click=True, edit=True)
    kb = node("android.inputmethodservice.KeyboardView", desc="Keyboard", b=(0, 600, 999, 940))
    focused = render_screen([field, kb])
    plain = render_screen([field])
    assert changed(focused, plain, px(field.bounds)) > 20      # accent outline and cursor


# ---- files ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("eid,step,name", [
    ("eval-0-00000", 0, "eval-0-00000-0.png"),
    ("my ep/1:x", 12, "my_ep_1_x-12.png"),
    ("caf\u00e9", 3, "caf_-3.png"),
])
def test_screenshot_name(eid, step, name):
    assert screenshot_name(eid, step) == name


def test_write_png_is_atomic_and_idempotent(tmp_path, eval_steps):
    s = eval_steps[2]
    path = write_png(s, tmp_path / "sub" / "a.png")
    assert path.read_bytes() == render_png(s)
    mtime = path.stat().st_mtime_ns
    write_png(s, path)
    assert path.stat().st_mtime_ns == mtime                    # unchanged bytes: not rewritten
    write_png(eval_steps[3], path)
    assert path.read_bytes() == render_png(eval_steps[3])
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"]   # no temporary left behind


def test_write_screenshots(tmp_path, calib_steps):
    bare = [replace(s, screenshot=None) for s in calib_steps[:5]]
    out = write_screenshots(bare, tmp_path / "shots")
    assert [s.screenshot for s in out] == [(tmp_path / "shots" / screenshot_name(s.episode_id, s.step)).resolve()
                                           for s in bare]
    assert [replace(s, screenshot=None) for s in out] == bare
    assert all(s.screenshot.read_bytes() == render_png(s) for s in out)
    with pytest.raises(ValueError, match="both be drawn"):
        write_screenshots([bare[0], bare[0]], tmp_path / "dup")


# ---- scripts/render_screens.py --------------------------------------------------------------------

@pytest.fixture()
def small_file(tmp_path):
    """The first 8 eval records without their screenshot key, in tmp_path/eps/small.jsonl."""
    (tmp_path / "eps").mkdir()
    lines = []
    for line in EVAL_PATH.read_text(encoding="utf-8").splitlines()[:8]:
        obj = json.loads(line)
        del obj["screenshot"]
        lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    path = tmp_path / "eps" / "small.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_render_screens_adds_screenshots_and_changes_nothing_else(small_file, capsys):
    import render_screens

    before = small_file.read_text(encoding="utf-8").splitlines()
    assert render_screens.main(["--episodes", str(small_file)]) == 0
    assert "drew 8" in capsys.readouterr().out
    after = small_file.read_text(encoding="utf-8").splitlines()
    assert len(after) == len(before)
    for old, new in zip(before, after):
        obj = json.loads(new)
        rel = obj.pop("screenshot")
        assert json.dumps(obj, ensure_ascii=False, separators=(",", ":")) == old
        assert rel.startswith("screens/small/") and rel.endswith(".png")
    steps = load_steps(small_file)
    shipped = load_steps(EVAL_PATH, limit=8)
    assert [replace(s, screenshot=None) for s in steps] == [replace(s, screenshot=None) for s in shipped]
    # the same pictures as the shipped ones
    for s, t in zip(steps, shipped):
        assert s.screenshot.read_bytes() == t.screenshot.read_bytes()
    assert not list(small_file.parent.glob("*.tmp"))


def test_render_screens_second_run_and_check(small_file, capsys):
    import render_screens

    assert render_screens.main(["--episodes", str(small_file)]) == 0
    text = small_file.read_bytes()
    assert render_screens.main(["--episodes", str(small_file)]) == 0
    assert "drew 0, unchanged 8" in capsys.readouterr().out
    assert small_file.read_bytes() == text
    assert render_screens.main(["--episodes", str(small_file), "--check"]) == 0
    first = load_steps(small_file)[0].screenshot
    first.write_bytes(render_png(load_steps(small_file)[1]))      # a wrong picture
    assert render_screens.main(["--episodes", str(small_file), "--check"]) == 1
    assert "1 screenshot(s) missing or different" in capsys.readouterr().out
    assert small_file.read_bytes() == text                          # --check writes nothing


def test_render_screens_prune_and_folder(small_file, tmp_path):
    from render_screens import render_file

    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "stale.png").write_bytes(b"old")
    counts = render_file(small_file, folder, prune=True)
    assert counts["drawn"] == 8 and counts["pruned"] == 1 and counts["bytes"] > 8 * 2000
    assert json.loads(small_file.read_text().splitlines()[0])["screenshot"].startswith("../elsewhere/")
    assert len(list(folder.glob("*.png"))) == 8


def test_render_screens_keeps_a_screenshot_without_tree(small_file):
    from render_screens import render_file

    render_file(small_file)
    lines = small_file.read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[0])
    obj["screen"] = []
    obj["screenshot"] = "mine.png"
    shutil.copy(load_steps(small_file)[3].screenshot, small_file.parent / "mine.png")
    lines[0] = json.dumps(obj, separators=(",", ":"))
    small_file.write_text("\n".join(lines) + "\n")
    counts = render_file(small_file)
    assert counts["kept"] == 1 and counts["unchanged"] == 7
    assert json.loads(small_file.read_text().splitlines()[0])["screenshot"] == "mine.png"


@pytest.mark.parametrize("bad,fragment", [
    ("not json", "invalid JSON"),
    (json.dumps({"episode_id": "x"}), "missing field"),
])
def test_render_screens_names_the_bad_line(small_file, bad, fragment, capsys):
    import render_screens

    lines = small_file.read_text(encoding="utf-8").splitlines()
    lines.insert(2, bad)
    small_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = small_file.read_bytes()
    assert render_screens.main(["--episodes", str(small_file)]) == 2
    err = capsys.readouterr().err
    assert "small.jsonl line 3" in err and fragment in err
    assert small_file.read_bytes() == before                        # nothing rewritten
    with pytest.raises(EpisodeError, match="line 3"):
        from render_screens import render_file
        render_file(small_file)


def test_render_screens_refuses_two_records_with_one_name(small_file):
    from render_screens import render_file

    lines = small_file.read_text(encoding="utf-8").splitlines()
    small_file.write_text("\n".join(lines + lines[:1]) + "\n", encoding="utf-8")
    with pytest.raises(EpisodeError, match="line 9: .* also on line 1"):
        render_file(small_file)


def test_hand_made_record_round_trips_through_a_rendered_screenshot(tmp_path):
    rec = {"episode_id": "ep-1", "step": 0, "goal": "Save", "app": "Notes", "history": [],
           "screen": [node("Button", "Save", rid="com.x:id/save", b=(500, 700, 700, 770), click=True).to_json()],
           "target": 'do(action="Tap", element=[600,735])', "target_box": [500, 700, 700, 770]}
    s = step_from_json(rec)
    shot = write_png(s, tmp_path / "screens" / "ep-1-0.png")
    rec["screenshot"] = "screens/ep-1-0.png"
    (tmp_path / "one.jsonl").write_text(json.dumps(rec) + "\n")
    (loaded,) = load_steps(tmp_path / "one.jsonl")
    assert loaded.screenshot == shot.resolve()
    img = Image.open(loaded.screenshot).convert("RGB")
    cx, cy = 600 * W // 1000, 735 * H // 1000                      # the tap point lands on the button
    assert img.getpixel((cx - 20, cy)) != (255, 255, 255)


def test_a_small_screenshot_size_renders():
    from workbench.task import DEFAULT_EPISODES, load_steps
    from workbench.task.render import render_screen

    for step in load_steps(DEFAULT_EPISODES, limit=3):
        assert render_screen(step, (100, 240)).size == (100, 240)
