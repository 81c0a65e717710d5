"""Theme, canvas, colours, fonts, text fitting and drawing, and node-kind predicates of the renderer
(see workbench/task/render/__init__.py)."""
from __future__ import annotations

import hashlib
from collections import Counter
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ..episodes import Node

SCREEN_SIZE = (360, 800)  # (width, height): a 1080 x 2400 phone at 1/3


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
