"""Open-AutoGLM action grammar: the `Action` record, its canonical text, and a tolerant parser.

The agent answers with one call per step, e.g. ``do(action="Tap", element=[500,870])`` or
``finish(message="done")``, optionally wrapped in ``<answer>...</answer>`` after a ``<think>``
block. Like the real agent, the text is parsed with Python's ``ast`` (never ``eval``).
Coordinates run 0..999 on both axes.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

#: Action types of the Open-AutoGLM grammar (docs/design.md), plus ``finish``.
ACTION_TYPES = (
    "Launch", "Tap", "Type", "Swipe", "Long Press", "Double Tap",
    "Back", "Home", "Wait", "finish",
)
#: Extra actions of the real Open-AutoGLM agent: parsed (not a parse failure), scored by type.
EXTRA_TYPES = ("Type_Name", "Take_over", "Interact", "Note", "Call_API")
TAP_LIKE = ("Tap", "Long Press", "Double Tap")

_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S)
_THINK = re.compile(r"<think>.*?</think>", re.S)


class ActionParseError(ValueError):
    """The text is not one action of the grammar."""


@dataclass(frozen=True)
class Action:
    """One agent action. Only the fields of its type are set.

    Args:
        type: one of ACTION_TYPES or EXTRA_TYPES.
        element: (x, y) in 0..999 for tap-like actions.
        start, end: (x, y) for Swipe.
        text: typed text (Type, Type_Name).
        app: app name (Launch).
        duration: free text (Wait), e.g. "2 seconds".
        message: free text (finish, Take_over, ...).
    """

    type: str
    element: tuple[int, int] | None = None
    start: tuple[int, int] | None = None
    end: tuple[int, int] | None = None
    text: str | None = None
    app: str | None = None
    duration: str | None = None
    message: str | None = None

    def to_text(self) -> str:
        """The canonical grammar string (what the model is trained to emit)."""
        if self.type == "finish":
            return f"finish(message={_q(self.message or '')})"
        parts = [f"action={_q(self.type)}"]
        for key in ("app", "element", "start", "end", "text", "duration", "message"):
            value = getattr(self, key)
            if value is None or (key == "message" and self.type == "finish"):
                continue
            parts.append(f"{key}={_fmt(value)}")
        return "do(" + ", ".join(parts) + ")"

    def swipe_direction(self) -> str | None:
        """Main axis of a swipe: 'up', 'down', 'left' or 'right' (None if not a swipe)."""
        if self.start is None or self.end is None:
            return None
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        if abs(dx) >= abs(dy):
            return "right" if dx > 0 else "left"
        return "down" if dy > 0 else "up"


def _q(s: str) -> str:
    # a JSON string literal is also a valid Python literal: quotes, backslashes, line breaks escaped
    return json.dumps(s, ensure_ascii=False)


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    return _q(str(value))


def _point(value, key: str) -> tuple[int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ActionParseError(f"{key} must be [x, y] integers, got {value!r}")
    x, y = value
    if not (0 <= x <= 999 and 0 <= y <= 999):
        raise ActionParseError(f"{key} {value!r} outside 0..999")
    return (x, y)


_REQUIRED = {
    "Launch": ("app",), "Tap": ("element",), "Long Press": ("element",),
    "Double Tap": ("element",), "Type": ("text",), "Type_Name": ("text",),
    "Swipe": ("start", "end"),
}
_POINT_KEYS = ("element", "start", "end")
_TEXT_KEYS = ("text", "app", "duration", "message")


def extract_answer(text: str) -> str:
    """Strip ``<think>`` blocks and an ``<answer>`` wrapper; return the bare call text."""
    text = _THINK.sub("", text)
    m = _ANSWER.search(text)
    return (m.group(1) if m else text).strip()


def parse_action(text: str) -> Action:
    """Parse one action.

    Args:
        text: model output, bare or wrapped in ``<answer>...</answer>``.
    Returns:
        The Action.
    Raises:
        ActionParseError: the text is not one call of the grammar (message says why).
    """
    body = extract_answer(text)
    try:
        node = ast.parse(body, mode="eval").body
    except SyntaxError as e:
        raise ActionParseError(f"not a Python call: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ActionParseError("expression nested too deeply") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ActionParseError("expected do(...) or finish(...)")
    if node.args:
        raise ActionParseError("positional arguments are not allowed")
    try:
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    except (ValueError, TypeError, RecursionError, MemoryError):
        raise ActionParseError("argument values must be literals") from None
    if None in kwargs:
        raise ActionParseError("**kwargs are not allowed")
    if node.func.id == "finish":
        return Action("finish", message=str(kwargs.get("message", "")))
    if node.func.id != "do":
        raise ActionParseError(f"unknown function {node.func.id!r}")
    kind = kwargs.pop("action", None)
    if kind not in ACTION_TYPES + EXTRA_TYPES or kind == "finish":
        raise ActionParseError(f"unknown action {kind!r}")
    for key in _REQUIRED.get(kind, ()):
        if key not in kwargs:
            raise ActionParseError(f"{kind} needs {key}=")
    fields = {}
    for key, value in kwargs.items():
        if key in _POINT_KEYS:
            fields[key] = _point(value, key)
        elif key in _TEXT_KEYS:
            fields[key] = str(value)
        # other keys of the real agent (e.g. instruction=) are ignored
    return Action(kind, **fields)


def try_parse(text: str) -> Action | None:
    """Like parse_action, but a malformed text gives None (a counted parse failure)."""
    try:
        return parse_action(text)
    except ActionParseError:
        return None
