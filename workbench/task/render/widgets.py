"""Element painters of the renderer: text rows, buttons, text fields, switches, check boxes, launcher
icons, the keyboard, the camera preview and progress spinners (see workbench/task/render/__init__.py)."""
from __future__ import annotations

from ..episodes import Node
from .canvas import _ACCENTS, _HINT, _INK, _INK2, _KEY_ROWS, _WHITE, _Canvas, _digest, _fit, _font, _is_hint, _mix, _rid, _text
from .glyphs import _glyph_search


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
