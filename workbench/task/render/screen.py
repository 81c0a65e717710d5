"""The renderer's passes and public functions: backgrounds, then content, render_screen / render_png,
file names and writing (see workbench/task/render/__init__.py)."""
from __future__ import annotations

import io
import os
import re
from dataclasses import replace
from pathlib import Path

from PIL import Image

from ..episodes import Node, Step
from .canvas import (
    SCREEN_SIZE, _NAV_IDS, _Canvas, _Theme, _is_divider, _is_launcher_icon, _is_layout, _is_status, _mix, _rid, _short,
)
from .glyphs import _image
from .widgets import (
    _button, _camera_preview, _checkbox, _field, _keyboard, _label, _launcher_icon, _progress, _switch,
)

PALETTE_COLORS = 256      # colours of the palette PNG (flat UI + anti-aliased text fits easily)


# ---- backgrounds --------------------------------------------------------------------------------

def _backgrounds(c: _Canvas, nodes) -> None:
    t = c.theme
    status = [n for n in nodes if _is_status(n)]
    titles = [n for n in nodes if _rid(n) == "toolbar_title"]
    status_bottom = max((c.box(n.bounds)[3] for n in status), default=0)
    if c.theme.launcher:  # a soft two-tone wallpaper
        c.draw.rectangle((0, c.h * 0.55, c.w, c.h), fill=_mix(t.page, "#4f7f8f", 0.35))
    if titles and not t.dark:
        title = c.box(titles[0].bounds)
        c.draw.rectangle((0, 0, c.w, title[3] + c.d(8)), fill=t.bar)
    elif status_bottom and not t.dark:
        c.draw.rectangle((0, 0, c.w, status_bottom), fill=t.page)
    nav = [n for n in nodes if n.resource_id in _NAV_IDS]
    if nav:
        top = min(c.box(n.bounds)[1] for n in nav)
        c.draw.rectangle((0, top, c.w, c.h), fill=t.nav)
    for n in nodes:
        b = c.box(n.bounds)
        if _is_divider(n) and not t.launcher:  # no dividers across a wallpaper
            c.draw.line((b[0], b[1], b[2] - 1, b[1]), fill="#3a4a55" if t.dark else "#e3e5e8", width=1)
        elif n.scrollable and _is_layout(n):  # a list: its scrollbar thumb at the right edge
            x = b[2] - c.d(5)
            length = max(c.d(24), (b[3] - b[1]) // 4)
            c.draw.rounded_rectangle((x, b[1] + c.d(4), x + c.d(3), b[1] + c.d(4) + length),
                                     radius=c.d(1.5), fill="#c4c7c5")


# ---- content ------------------------------------------------------------------------------------

def _content(c: _Canvas, nodes) -> None:
    keyboard = any(_short(n) == "KeyboardView" for n in nodes)
    texts = [n for n in nodes if n.text]
    for n in nodes:
        kind = _short(n)
        b = c.box(n.bounds)
        if b[2] - b[0] < 2 or b[3] - b[1] < 2 or _is_layout(n) or _is_divider(n):
            continue
        if kind == "KeyboardView":
            _keyboard(c, b)
        elif kind == "SurfaceView":
            _camera_preview(c, b)
        elif kind == "ProgressBar":
            _progress(c, b)
        elif kind in ("Switch", "ToggleButton", "SwitchCompat", "SwitchMaterial"):
            _switch(c, b, n)
        elif kind in ("CheckBox", "RadioButton"):
            _checkbox(c, b, n, radio=kind == "RadioButton")
        elif kind == "EditText" or n.editable:
            _field(c, b, n, focused=keyboard)
        elif kind == "Button" or (kind.endswith("Button") and n.text):
            _button(c, b, n)
        elif _is_launcher_icon(n):
            _launcher_icon(c, b, n)
        elif n.text:
            _label(c, b, n, texts)
        elif kind in ("ImageView", "ImageButton") or n.content_desc:
            _image(c, b, n)



# ---- public ---------------------------------------------------------------------------------------

def _nodes_of(step_or_nodes) -> tuple[Node, ...]:
    nodes = step_or_nodes.screen if isinstance(step_or_nodes, Step) else step_or_nodes
    nodes = tuple(nodes)
    for n in nodes:
        if not isinstance(n, Node):
            raise TypeError(f"render_screen expects a Step or Nodes, got {type(n).__name__}")
    return nodes


def render_screen(step_or_nodes, size: tuple[int, int] = SCREEN_SIZE) -> Image.Image:
    """Draw a phone screen from an accessibility tree.

    Args:
        step_or_nodes: a Step (its `screen`) or an iterable of Nodes (bounds in 0..999).
        size: (width, height) in pixels; fonts and strokes scale with width / 360.
    Returns:
        An RGB PIL image of `size`; the same tree and size always give the same pixels.
    """
    w, h = size
    if w < 28 or h < 28:
        raise ValueError(f"size {size!r}: width and height must be >= 28 px")
    nodes = _nodes_of(step_or_nodes)
    canvas = _Canvas((w, h), _Theme(nodes))
    _backgrounds(canvas, nodes)
    _content(canvas, nodes)
    return canvas.img


def render_png(step_or_nodes, size: tuple[int, int] = SCREEN_SIZE) -> bytes:
    """`render_screen` as PNG bytes: a 256-colour palette PNG, no metadata, fixed compression.

    The bytes are the same for the same tree, size, Pillow and zlib; the decoded pixels are the same
    for the same tree, size and Pillow (FreeType) version.
    """
    img = render_screen(step_or_nodes, size).quantize(
        colors=PALETTE_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def screenshot_name(episode_id: str, step: int) -> str:
    """File name of a step's screenshot: ``<episode_id>-<step>.png`` (characters outside [A-Za-z0-9._-]
    of the episode id replaced by '_')."""
    return f"{_UNSAFE.sub('_', episode_id)}-{step}.png"


def write_png(step_or_nodes, path: str | Path, size: tuple[int, int] = SCREEN_SIZE) -> Path:
    """Render and write a PNG atomically (a temporary file renamed into place); returns the path.
    A file that already holds exactly these bytes is left untouched (its mtime too)."""
    path = Path(path)
    data = render_png(step_or_nodes, size)
    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def write_screenshots(steps, folder: str | Path, size: tuple[int, int] = SCREEN_SIZE) -> list[Step]:
    """Render every step's tree to ``folder/<episode_id>-<step>.png``; returns the steps with
    `screenshot` set to those files (absolute paths).

    Raises:
        ValueError: two steps would share a file name (a repeated episode id and step).
    """
    folder = Path(os.path.abspath(folder))
    out, seen = [], {}
    for s in steps:
        name = screenshot_name(s.episode_id, s.step)
        if name in seen:
            raise ValueError(f"steps {seen[name]} and {(s.episode_id, s.step)} would both be drawn to {folder / name}")
        seen[name] = (s.episode_id, s.step)
        out.append(replace(s, screenshot=write_png(s, folder / name, size)))
    return out
