"""Image and icon painters of the renderer: images, maps, photos, icon buttons and the small glyphs
(search, battery, Wi-Fi) (see workbench/task/render/__init__.py)."""
from __future__ import annotations

import re

from ..episodes import Node
from .canvas import _ACCENTS, _INK, _WHITE, _Canvas, _Theme, _digest, _mix, _rid, _short, _text


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
    if h < 4:  # a status bar too small to hold a battery (a tiny screenshot size): no glyph
        return
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
