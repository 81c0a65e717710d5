"""Deterministic phone screenshots drawn from an accessibility tree (Pillow only, no torch).

The real Open-AutoGLM agent shows its vision-language model a screenshot per step. Our episodes
record the accessibility tree, so this module paints a plausible Android screen from it: status
bar (clock, Wi-Fi and battery icons), top app bar, list rows, filled pill buttons, outlined text
fields with hint text, switches, icons for content-description-only nodes, images and maps as
shapes, the on-screen keyboard, scrollbars of scrollable lists and the three-button navigation
bar. Text is set in the FreeType font that ships with Pillow (``ImageFont.load_default(size)``)
and ellipsized to its node's box, so a vision model can read every element's label where the tree
puts it.

Node bounds are 0..999 in both axes; the node [x1, y1, x2, y2] covers the pixels from
x1 * W / 1000 to (x2 + 1) * W / 1000 (so 999 reaches the right and bottom edge), which maps an
action's element [x, y] to the pixel (x * W / 1000, y * H / 1000) as Open-AutoGLM does.

Drawing happens in two passes over the tree, each in tree order: backgrounds first (page,
status bar, app bar, navigation bar, dividers, scrollbars), then content. Layout containers
(FrameLayout, LinearLayout, ViewGroup, ConstraintLayout, RecyclerView) paint no fill, so a
full-screen container never hides what it contains.

The same tree gives the same PNG bytes: no randomness (colours come from sha256 of names), no
timestamps or text chunks in the file, fixed zlib settings and a fixed palette quantization. The
screen is 360 x 800 px by default (a 1080 x 2400 phone at 1/3, so 1 px = 1 dp at its 3x density);
the file is a 256-colour palette PNG, typically 4-6 KB.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from collections import Counter
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .episodes import Node, Step

SCREEN_SIZE = (360, 800)  # (width, height): a 1080 x 2400 phone at 1/3
PALETTE_COLORS = 256      # colours of the palette PNG (flat UI + anti-aliased text fits easily)

# ---- theme ------------------------------------------------------------------------------------

_ACCENTS = ("#1a73e8", "#188038", "#6750a4", "#00796b", "#c5221f", "#e8710a", "#3f51b5", "#c2185b")
_WHITE, _INK, _INK2, _HINT = "#ffffff", "#1c1b1f", "#5f6368", "#80868b"
_LAYOUT_SUFFIXES = ("FrameLayout", "LinearLayout", "ViewGroup", "ConstraintLayout", "RecyclerView",
                    "RelativeLayout", "ScrollView", "CoordinatorLayout")
# The tree has no hint flag: an EditText whose text is one of these (the generator's field hints) or starts
# with a prefix below is drawn as grey hint text, any other text as typed text.
_HINT_TEXTS = {"Text message", "Title", "Note", "Songs, artists, albums", "Message", "Email", "Password"}
_HINT_PREFIXES = ("Search", "Enter ", "Type ", "Add a ")
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


def _mix(color: str, other: str, t: float) -> tuple[int, int, int]:
    """`color` blended toward `other` by t (0: color, 1: other)."""
    a, b = _rgb(color), _rgb(other)
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def _rgb(color) -> tuple[int, int, int]:
    if isinstance(color, tuple):
        return color
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


def _package(nodes) -> str:
    """The app's package: the most common resource-id package that is not the system's."""
    pkgs = Counter(n.resource_id.split(":", 1)[0] for n in nodes
                   if ":" in n.resource_id and n.resource_id.split(":", 1)[0] not in ("android", "com.android"))
    if not pkgs:
        return ""
    top = max(pkgs.values())
    return min(p for p, c in pkgs.items() if c == top)


class _Theme:
    def __init__(self, nodes):
        pkg = _package(nodes)
        self.accent = _ACCENTS[_digest(pkg) % len(_ACCENTS)] if pkg else _ACCENTS[0]
        self.launcher = pkg == "com.android.launcher" or any(_is_launcher_icon(n) for n in nodes)
        self.camera = any(n.cls.endswith("SurfaceView") for n in nodes)
        self.dark = self.launcher or self.camera
        self.page = "#203a4c" if self.launcher else "#000000" if self.camera else _WHITE
        self.fg = _WHITE if self.dark else _INK
        self.fg2 = "#d7dde3" if self.dark else _INK2
        self.icon = _WHITE if self.dark else "#444746"
        self.bar = _mix(self.accent, _WHITE, 0.9)  # top app bar and status bar surface
        self.nav = "#101d26" if self.launcher else "#000000" if self.camera else "#f1f3f4"


# ---- geometry and text ------------------------------------------------------------------------

class _Canvas:
    def __init__(self, size, theme: _Theme):
        self.w, self.h = size
        self.dp = self.w / SCREEN_SIZE[0]  # 1 dp at the default size
        self.theme = theme
        self.img = Image.new("RGB", size, theme.page)
        self.draw = ImageDraw.Draw(self.img)

    def box(self, b) -> tuple[int, int, int, int]:
        """Pixel box of 0..999 bounds: left, top, right, bottom, all inclusive (as ImageDraw draws)."""
        x1, y1, x2, y2 = b
        return (round(x1 * self.w / 1000), round(y1 * self.h / 1000),
                max(round(x1 * self.w / 1000), round((x2 + 1) * self.w / 1000) - 1),
                max(round(y1 * self.h / 1000), round((y2 + 1) * self.h / 1000) - 1))

    def d(self, v: float) -> int:
        return max(1, round(v * self.dp))


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _fit(text: str, font, width: float) -> str:
    """`text`, ellipsized ("...") to at most `width` px in `font` ("" if not even the ellipsis fits)."""
    text = " ".join(text.split())
    if font.getlength(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid].rstrip() + "\u2026") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "\u2026" if font.getlength("\u2026") <= width else ""


def _wrap2(text: str, font, width: float) -> list[str] | None:
    """`text` in two lines of at most `width` px (the second ellipsized), or None if one word is too long."""
    words = text.split()
    for k in range(len(words) - 1, 0, -1):  # the longest first line that fits
        first = " ".join(words[:k])
        if font.getlength(first) <= width:
            rest = _fit(" ".join(words[k:]), font, width)
            return [first, rest] if rest else None
    return None


def _text(c: _Canvas, box, text: str, color, size: float, align: str = "left", pad: float = 0,
          cy: float | None = None, wrap: bool = False) -> None:
    """Draw `text` inside pixel `box`: font no taller than the box; if the line is too wide, two lines
    (with `wrap` and room for them), else a font up to 20 % smaller, else ellipsized."""
    x1, y1, x2, y2 = box
    h = y2 - y1
    if h < 6 or not text:
        return
    px = max(7, min(round(size * c.dp), int(h * 0.8)))
    avail = x2 - x1 - 2 * pad * c.dp
    text = " ".join(text.split())
    font = _font(px)
    lines = [text]
    if font.getlength(text) > avail:
        two = _wrap2(text, font, avail) if wrap and h >= 2.3 * px else None
        if two:
            lines = two
        else:
            small = _font(max(7, round(px * 0.8)))
            font = small if small.getlength(text) <= avail else font
            lines = [_fit(text, font, avail)]
    if not lines[0]:
        return
    y = (y1 + y2) / 2 if cy is None else cy
    step = font.size * 1.15
    for i, line in enumerate(lines):
        ly = y + (i - (len(lines) - 1) / 2) * step
        if align == "center":
            c.draw.text(((x1 + x2) / 2, ly), line, fill=color, font=font, anchor="mm")
        else:
            c.draw.text((x1 + pad * c.dp, ly), line, fill=color, font=font, anchor="lm")


# ---- node kinds -------------------------------------------------------------------------------

def _short(n: Node) -> str:
    return n.cls.rsplit(".", 1)[-1]


def _rid(n: Node) -> str:
    return n.resource_id.rsplit("/", 1)[-1]


def _is_layout(n: Node) -> bool:
    return _short(n).endswith(_LAYOUT_SUFFIXES)


def _is_launcher_icon(n: Node) -> bool:
    x1, y1, x2, y2 = n.bounds
    return (_short(n) == "TextView" and n.clickable and bool(n.text) and n.text == n.content_desc
            and y2 - y1 >= 100 and x2 - x1 <= 400)


def _is_divider(n: Node) -> bool:
    return _short(n) == "View" and not n.text and not n.content_desc and n.bounds[3] - n.bounds[1] <= 4


def _is_status(n: Node) -> bool:
    return n.bounds[3] <= 40 and (n.resource_id == "android:id/clock" or n.content_desc.startswith(
        ("Battery", "Wi-Fi", "Signal", "Mobile")))


_NAV_IDS = ("android:id/back", "android:id/home", "android:id/recents")


def _is_hint(text: str) -> bool:
    return text in _HINT_TEXTS or text.startswith(_HINT_PREFIXES)


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


def _label(c: _Canvas, b, n: Node, texts) -> None:
    t, rid = c.theme, _rid(n)
    if rid == "snackbar":
        c.draw.rounded_rectangle(b, radius=c.d(4), fill="#323232")
        _text(c, b, n.text, "#f2f2f2", 14, pad=16)
        return
    if n.resource_id == "android:id/clock":
        _text(c, b, n.text, t.fg, 12, pad=1)
        return
    if rid == "toolbar_title":
        _text(c, b, n.text, t.fg, 21, pad=4)
        return
    color, size = (t.fg2, 13) if rid.endswith("_sub") else (t.fg, 16)
    x1, y1, x2, y2 = n.bounds
    wide = x2 - x1 >= 450
    if n.clickable and not wide:  # a cell or a tab: centred
        _text(c, b, n.text, color, size, align="center", pad=2)
        return
    if max(y2 - y1, 0) >= 120 and not n.clickable:  # a big readout (temperature, time)
        _text(c, b, n.text, color, 44, align="center")
        return
    # a row with secondary text inside: the primary line sits above it
    inner = [m.bounds[1] for m in texts if m is not n and x1 <= m.bounds[0] and m.bounds[2] <= x2
             and y1 + (y2 - y1) // 4 < m.bounds[1] and m.bounds[3] <= y2]
    cy = None
    if inner:
        top = c.box((0, min(inner), 0, 0))[1]
        cy = (b[1] + top) / 2 + c.d(2)
    _text(c, b, n.text, color, size, pad=16 if n.clickable else 4, cy=cy, wrap=not n.clickable and not inner)


def _button(c: _Canvas, b, n: Node) -> None:
    t = c.theme
    r = min((b[3] - b[1]) // 2, c.d(20))
    label = n.text or n.content_desc
    if label.lower() in ("cancel", "share", "not now", "skip"):  # an outlined (secondary) button
        c.draw.rounded_rectangle(b, radius=r, fill=t.page, outline="#79747e", width=c.d(1))
        _text(c, b, label, t.accent, 14, align="center", pad=6, wrap=True)
    else:
        c.draw.rounded_rectangle(b, radius=r, fill=t.accent)
        _text(c, b, label, _WHITE, 14, align="center", pad=6, wrap=True)


def _field(c: _Canvas, b, n: Node, focused: bool) -> None:
    t = c.theme
    rid = _rid(n)
    hint = _is_hint(n.text)
    search = "search" in rid or rid == "url_bar" or n.text.startswith("Search")
    color = _HINT if hint else _INK
    if search:  # a filled search bar with a magnifier
        fill = _mix(t.accent, _WHITE, 0.86) if not t.dark else "#e9eef2"
        r = (b[3] - b[1]) // 2
        c.draw.rounded_rectangle(b, radius=r, fill=fill,
                                 outline=t.accent if focused else None, width=c.d(2))
        s = min(b[3] - b[1], c.d(40))
        icon = (b[0] + c.d(8), (b[1] + b[3] - s) // 2, b[0] + c.d(8) + s, (b[1] + b[3] + s) // 2)
        _glyph_search(c, icon, _INK2)
        tb = (icon[2], b[1], b[2] - r // 2, b[3])
        _text(c, tb, n.text, color, 16, pad=2)
    else:  # an outlined text field
        c.draw.rounded_rectangle(b, radius=c.d(4), fill=_WHITE if not t.dark else "#f1f3f4",
                                 outline=t.accent if focused else "#79747e", width=c.d(2 if focused else 1))
        tb = b
        _text(c, b, n.text, color, 16, pad=14)
    if focused:  # the cursor: after typed text, before a hint
        font = _font(max(7, min(round(16 * c.dp), int((b[3] - b[1]) * 0.8))))
        pad = (14 if not search else 2) * c.dp
        width = 0 if hint else font.getlength(_fit(n.text, font, tb[2] - tb[0] - 2 * pad))
        x = min(tb[0] + pad + width + c.d(1), tb[2] - c.d(4))
        half = min((b[3] - b[1]) * 0.3, 11 * c.dp)
        cy = (b[1] + b[3]) / 2
        c.draw.line((x, cy - half, x, cy + half), fill=t.accent, width=c.d(2))


def _switch(c: _Canvas, b, n: Node) -> None:
    t = c.theme
    on = n.text.strip().upper() in ("ON", "TRUE", "1", "CHECKED")
    w, h = min(c.d(52), b[2] - b[0]), min(c.d(32), b[3] - b[1])
    x2, cy = b[2] - min(c.d(8), b[2] - b[0] - w), (b[1] + b[3]) // 2
    track = (x2 - w, cy - h // 2, x2, cy + h // 2)
    r = h // 2
    if on:
        c.draw.rounded_rectangle(track, radius=r, fill=t.accent)
        k = r - c.d(4)
        cx = track[2] - r
        c.draw.ellipse((cx - k, cy - k, cx + k, cy + k), fill=_WHITE)
    else:
        c.draw.rounded_rectangle(track, radius=r, fill="#e7e0ec", outline="#79747e", width=c.d(2))
        k = r - c.d(8)
        cx = track[0] + r
        c.draw.ellipse((cx - k, cy - k, cx + k, cy + k), fill="#79747e")


def _checkbox(c: _Canvas, b, n: Node, radio: bool) -> None:
    t = c.theme
    on = n.text.strip().upper() in ("ON", "TRUE", "1", "CHECKED")
    s = min(c.d(18), b[3] - b[1], b[2] - b[0])
    cy = (b[1] + b[3]) // 2
    sq = (b[0] + c.d(4), cy - s // 2, b[0] + c.d(4) + s, cy + s // 2)
    if radio:
        c.draw.ellipse(sq, outline=t.accent if on else "#49454f", width=c.d(2))
        if on:
            k = s // 4
            c.draw.ellipse((sq[0] + k, sq[1] + k, sq[2] - k, sq[3] - k), fill=t.accent)
    elif on:
        c.draw.rounded_rectangle(sq, radius=c.d(2), fill=t.accent)
        c.draw.line((sq[0] + s * 0.2, sq[1] + s * 0.5, sq[0] + s * 0.42, sq[1] + s * 0.72,
                     sq[0] + s * 0.8, sq[1] + s * 0.3), fill=_WHITE, width=c.d(2))
    else:
        c.draw.rounded_rectangle(sq, radius=c.d(2), outline="#49454f", width=c.d(2))
    label = n.text if n.text.strip().upper() not in ("ON", "OFF", "TRUE", "FALSE", "CHECKED") else ""
    _text(c, (sq[2], b[1], b[2], b[3]), label, t.fg, 15, pad=8)


def _launcher_icon(c: _Canvas, b, n: Node) -> None:
    x1, y1, x2, y2 = b
    s = min(x2 - x1 - c.d(8), int((y2 - y1) * 0.55), c.d(52))
    cx = (x1 + x2) // 2
    top = y1 + c.d(6)
    color = _ACCENTS[_digest(n.text) % len(_ACCENTS)]
    c.draw.ellipse((cx - s // 2, top, cx + s // 2, top + s), fill=color)
    _text(c, (cx - s // 2, top, cx + s // 2, top + s), n.text[:1].upper(), _WHITE, 22, align="center")
    _text(c, (x1, top + s + c.d(4), x2, top + s + c.d(22)), n.text, c.theme.fg, 12, align="center")


def _keyboard(c: _Canvas, b) -> None:
    x1, y1, x2, y2 = b
    c.draw.rectangle(b, fill="#e8eaed")
    rows = 4
    gap = c.d(4)
    row_h = (y2 - y1 - gap * (rows + 1)) / rows
    key_w = (x2 - x1 - gap * 11) / 10
    for r, keys in enumerate(_KEY_ROWS):
        top = y1 + gap + r * (row_h + gap)
        offset = (10 - len(keys)) * (key_w + gap) / 2
        for i, k in enumerate(keys):
            left = x1 + gap + offset + i * (key_w + gap)
            kb = (round(left), round(top), round(left + key_w), round(top + row_h))
            c.draw.rounded_rectangle(kb, radius=c.d(5), fill=_WHITE)
            _text(c, kb, k, _INK, 19, align="center")
        if r == 2:  # shift and delete beside the last letter row
            for left, shift in ((x1 + gap, True), (x2 - gap - offset + gap, False)):
                kb = (round(left), round(top), round(left + offset - gap), round(top + row_h))
                c.draw.rounded_rectangle(kb, radius=c.d(5), fill="#c9ced6")
                kx, ky, k = (kb[0] + kb[2]) / 2, (kb[1] + kb[3]) / 2, min(kb[2] - kb[0], kb[3] - kb[1]) * 0.28
                if shift:  # an up arrow
                    c.draw.polygon(((kx, ky - k), (kx + k, ky), (kx + k * 0.45, ky), (kx + k * 0.45, ky + k),
                                    (kx - k * 0.45, ky + k), (kx - k * 0.45, ky), (kx - k, ky)),
                                   outline=_INK, width=c.d(1.5))
                else:  # backspace: a left-pointing tag with a cross
                    c.draw.polygon(((kx - k * 1.2, ky), (kx - k * 0.5, ky - k * 0.7), (kx + k * 1.1, ky - k * 0.7),
                                    (kx + k * 1.1, ky + k * 0.7), (kx - k * 0.5, ky + k * 0.7)),
                                   outline=_INK, width=c.d(1.5))
                    c.draw.line((kx - k * 0.1, ky - k * 0.3, kx + k * 0.5, ky + k * 0.3), fill=_INK, width=c.d(1.5))
                    c.draw.line((kx - k * 0.1, ky + k * 0.3, kx + k * 0.5, ky - k * 0.3), fill=_INK, width=c.d(1.5))
    top = y1 + gap + 3 * (row_h + gap)
    specials = (("?123", 1.5, "#c9ced6"), (",", 1, _WHITE), ("space", 4.5, _WHITE), (".", 1, _WHITE),
                ("OK", 1.5, "#c9ced6"))
    left = x1 + gap
    unit = (x2 - x1 - gap * (len(specials) + 1)) / sum(s for _, s, _ in specials)
    for label, span, fill in specials:
        kb = (round(left), round(top), round(left + unit * span), round(top + row_h))
        c.draw.rounded_rectangle(kb, radius=c.d(5), fill=fill)
        _text(c, kb, "" if label == "space" else label, _INK, 14, align="center")
        left += unit * span + gap


def _camera_preview(c: _Canvas, b) -> None:
    x1, y1, x2, y2 = b
    c.draw.rectangle(b, fill="#3c4a57")
    horizon = y1 + (y2 - y1) * 0.58
    c.draw.rectangle((x1, horizon, x2, y2), fill="#4d5a3c")
    r = (x2 - x1) * 0.09
    sx, sy = x1 + (x2 - x1) * 0.72, y1 + (y2 - y1) * 0.25
    c.draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill="#d9c98a")
    c.draw.polygon(((x1, horizon), (x1 + (x2 - x1) * 0.3, y1 + (y2 - y1) * 0.38),
                    (x1 + (x2 - x1) * 0.55, horizon)), fill="#2f3b46")


def _progress(c: _Canvas, b) -> None:
    s = min(b[2] - b[0], b[3] - b[1], c.d(48))
    cx, cy = (b[0] + b[2]) // 2, (b[1] + b[3]) // 2
    box = (cx - s // 2, cy - s // 2, cx + s // 2, cy + s // 2)
    c.draw.arc(box, 0, 360, fill=_mix(c.theme.accent, _WHITE, 0.8), width=c.d(4))
    c.draw.arc(box, -90, 180, fill=c.theme.accent, width=c.d(4))


def _map(c: _Canvas, b) -> None:
    x1, y1, x2, y2 = b
    w, h = x2 - x1, y2 - y1
    c.draw.rectangle(b, fill="#f1efe9")
    c.draw.rectangle((x1 + w * 0.08, y1 + h * 0.1, x1 + w * 0.38, y1 + h * 0.42), fill="#cde8c6")
    c.draw.polygon(((x1 + w * 0.62, y2), (x2, y1 + h * 0.55), (x2, y2)), fill="#aadaff")
    for fx in (0.45, 0.8):
        c.draw.line((x1 + w * fx, y1, x1 + w * (fx - 0.1), y2), fill=_WHITE, width=c.d(6))
    for fy in (0.3, 0.7):
        c.draw.line((x1, y1 + h * fy, x2, y1 + h * (fy + 0.05)), fill=_WHITE, width=c.d(5))
    c.draw.line((x1, y1 + h * 0.52, x2, y1 + h * 0.45), fill="#fbd36b", width=c.d(7))
    px, py, r = x1 + w * 0.5, y1 + h * 0.45, c.d(9)
    c.draw.polygon(((px - r * 0.8, py - r * 0.3), (px + r * 0.8, py - r * 0.3), (px, py + r * 1.6)),
                   fill="#ea4335")
    c.draw.ellipse((px - r, py - 2 * r, px + r, py), fill="#ea4335")
    c.draw.ellipse((px - r * 0.4, py - r * 1.4, px + r * 0.4, py - r * 0.6), fill="#a50e0e")


def _photo(c: _Canvas, b, seed: str) -> None:
    x1, y1, x2, y2 = b
    w, h = x2 - x1, y2 - y1
    base = _ACCENTS[_digest(seed) % len(_ACCENTS)]
    c.draw.rounded_rectangle(b, radius=c.d(6), fill=_mix(base, _WHITE, 0.72))
    s = min(w, h) * 0.5
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    c.draw.polygon(((cx - s * 0.6, cy + s * 0.4), (cx - s * 0.15, cy - s * 0.25), (cx + s * 0.15, cy + s * 0.1),
                    (cx + s * 0.3, cy - s * 0.05), (cx + s * 0.6, cy + s * 0.4)), fill=_mix(base, "#000000", 0.15))
    r = s * 0.12
    c.draw.ellipse((cx + s * 0.2 - r, cy - s * 0.35 - r, cx + s * 0.2 + r, cy - s * 0.35 + r), fill=_WHITE)


def _image(c: _Canvas, b, n: Node) -> None:
    desc = n.content_desc.lower()
    t = c.theme
    x1, y1, x2, y2 = b
    if desc.startswith("battery"):
        _glyph_battery(c, b, n.content_desc)
    elif desc.startswith("wi-fi"):
        _glyph_wifi(c, b)
    elif "map" in desc or _rid(n) == "map":
        _map(c, b)
    elif _short(n) == "ImageView" and ("photo" in desc or "thumb" in _rid(n) or "image" in desc
                                        or min(x2 - x1, y2 - y1) > c.d(40)):
        _photo(c, b, n.content_desc or n.resource_id)
    else:
        _icon_button(c, b, n, t)


def _icon_button(c: _Canvas, b, n: Node, t: _Theme) -> None:
    desc, rid = n.content_desc.lower(), _rid(n)
    x1, y1, x2, y2 = b
    s = min(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if rid.startswith("fab") or desc.startswith(("new ", "add ", "compose", "create")):
        c.draw.rounded_rectangle(b, radius=c.d(16), fill=_mix(t.accent, _WHITE, 0.75))
        k = s * 0.22
        c.draw.line((cx - k, cy, cx + k, cy), fill=_INK, width=c.d(3))
        c.draw.line((cx, cy - k, cx, cy + k), fill=_INK, width=c.d(3))
        return
    if desc == "shutter":
        r = s / 2
        c.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_WHITE)
        c.draw.ellipse((cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8), outline="#000000",
                       width=c.d(3))
        return
    g = min(s * 0.6, c.d(24))  # a 24-dp icon inside the touch target
    box = (cx - g / 2, cy - g / 2, cx + g / 2, cy + g / 2)
    col = t.icon
    w = c.d(2)
    gx1, gy1, gx2, gy2 = box
    if n.resource_id == "android:id/back" or desc in ("back", "navigate up"):
        c.draw.polygon(((gx1 + g * 0.2, cy), (gx2 - g * 0.2, gy1 + g * 0.15), (gx2 - g * 0.2, gy2 - g * 0.15)),
                       outline=col, width=w)
    elif n.resource_id == "android:id/home" or desc == "home":
        c.draw.ellipse((gx1 + g * 0.15, gy1 + g * 0.15, gx2 - g * 0.15, gy2 - g * 0.15), outline=col, width=w)
    elif "recent" in desc:
        c.draw.rounded_rectangle((gx1 + g * 0.2, gy1 + g * 0.2, gx2 - g * 0.2, gy2 - g * 0.2), radius=c.d(2),
                                 outline=col, width=w)
    elif "search" in desc:
        _glyph_search(c, box, col)
    elif "more" in desc:
        r = max(1.5, g * 0.09)
        for fy in (0.2, 0.5, 0.8):
            y = gy1 + g * fy
            c.draw.ellipse((cx - r, y - r, cx + r, y + r), fill=col)
    elif desc == "send":
        c.draw.polygon(((gx1 + g * 0.1, gy1 + g * 0.12), (gx2 - g * 0.05, cy), (gx1 + g * 0.1, gy2 - g * 0.12),
                        (gx1 + g * 0.22, cy)), fill=t.accent)
    elif "attach" in desc:
        c.draw.rounded_rectangle((cx - g * 0.18, gy1 + g * 0.05, cx + g * 0.18, gy2 - g * 0.05), radius=g * 0.18,
                                 outline=col, width=w)
        c.draw.line((cx, gy1 + g * 0.3, cx, gy2 - g * 0.3), fill=col, width=w)
    elif "delete" in desc or "trash" in desc:
        c.draw.line((gx1 + g * 0.15, gy1 + g * 0.22, gx2 - g * 0.15, gy1 + g * 0.22), fill=col, width=w)
        c.draw.rectangle((cx - g * 0.12, gy1 + g * 0.08, cx + g * 0.12, gy1 + g * 0.22), outline=col, width=w)
        c.draw.rectangle((gx1 + g * 0.25, gy1 + g * 0.22, gx2 - g * 0.25, gy2 - g * 0.08), outline=col, width=w)
    elif "archive" in desc:
        c.draw.rectangle((gx1 + g * 0.1, gy1 + g * 0.15, gx2 - g * 0.1, gy1 + g * 0.35), outline=col, width=w)
        c.draw.rectangle((gx1 + g * 0.18, gy1 + g * 0.35, gx2 - g * 0.18, gy2 - g * 0.12), outline=col, width=w)
        c.draw.line((cx - g * 0.12, gy1 + g * 0.5, cx + g * 0.12, gy1 + g * 0.5), fill=col, width=w)
    elif "unread" in desc or "mail" in desc:
        c.draw.rectangle((gx1 + g * 0.08, gy1 + g * 0.22, gx2 - g * 0.08, gy2 - g * 0.22), outline=col, width=w)
        c.draw.line((gx1 + g * 0.08, gy1 + g * 0.22, cx, cy + g * 0.05, gx2 - g * 0.08, gy1 + g * 0.22),
                    fill=col, width=w)
    elif "share" in desc:
        pts = ((gx2 - g * 0.2, gy1 + g * 0.2), (gx1 + g * 0.2, cy), (gx2 - g * 0.2, gy2 - g * 0.2))
        c.draw.line(pts, fill=col, width=w)
        r = g * 0.12
        for px, py in pts:
            c.draw.ellipse((px - r, py - r, px + r, py + r), fill=col)
    elif "switch camera" in desc or "rotate" in desc:
        c.draw.arc(box, 20, 160, fill=col, width=w)
        c.draw.arc(box, 200, 340, fill=col, width=w)
        c.draw.polygon(((gx2, cy - g * 0.05), (gx2 - g * 0.18, cy - g * 0.25), (gx2 + g * 0.12, cy - g * 0.25)),
                       fill=col)
    else:  # unknown icon: a circle with the description's initial
        c.draw.ellipse(box, outline=col, width=w)
        _text(c, tuple(round(v) for v in box), (n.content_desc or "?")[:1].upper(), col, 13, align="center")


def _glyph_search(c: _Canvas, box, col) -> None:
    x1, y1, x2, y2 = box
    g = min(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    g = min(g, c.d(24))
    r = g * 0.28
    ox, oy = cx - g * 0.08, cy - g * 0.08
    c.draw.ellipse((ox - r, oy - r, ox + r, oy + r), outline=col, width=c.d(2))
    c.draw.line((ox + r * 0.7, oy + r * 0.7, cx + g * 0.36, cy + g * 0.36), fill=col, width=c.d(2.5))


def _glyph_battery(c: _Canvas, b, desc: str) -> None:
    m = re.search(r"(\d+)", desc)
    level = min(100, max(0, int(m.group(1)))) / 100 if m else 1.0
    x1, y1, x2, y2 = b
    h = min(y2 - y1 - c.d(8), c.d(11))
    w = min(x2 - x1 - c.d(4), round(h * 2.1))
    cy = (y1 + y2) // 2
    bx2 = x2 - c.d(4)
    body = (bx2 - w, cy - h // 2, bx2 - c.d(2), cy + h // 2)
    col = c.theme.icon
    c.draw.rounded_rectangle(body, radius=c.d(2), outline=col, width=1)
    c.draw.rectangle((body[2], cy - h // 4, body[2] + c.d(2), cy + h // 4), fill=col)
    inner = body[2] - body[0] - 4
    fill = "#d93025" if level <= 0.15 else col
    if inner > 0:
        c.draw.rectangle((body[0] + 2, body[1] + 2, body[0] + 2 + max(1, round(inner * level)), body[3] - 2),
                         fill=fill)


def _glyph_wifi(c: _Canvas, b) -> None:
    x1, y1, x2, y2 = b
    s = max(2, min(y2 - y1 - c.d(6), c.d(14), (x2 - x1) * 0.6))
    cx, bottom = max(x1 + s * 0.75, x2 - c.d(4) - s * 0.75), (y1 + y2) / 2 + s / 2
    col = c.theme.icon
    c.draw.pieslice((cx - s, bottom - s, cx + s, bottom + s), 225, 315, fill=col)


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
