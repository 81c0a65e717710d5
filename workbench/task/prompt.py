"""The text prompt of one agent step: the shared system prompt, goal, app, history, screen, goal again.

Every step starts with the same long system prompt (as the real agent's does), so prefix
caching across steps pays off. Nodes are encoded tersely, one per line; interactive nodes
(clickable, editable or scrollable) carry their center point written exactly as an action writes
it (``[x,y]``), so the model's job is choosing the element, not arithmetic. Layout containers and
plain text keep only their class and text. The goal opens the user turn and is restated right
before the answer ("Task: ..."), as agent prompts often do after a long context: a small model
finds it there easily, and the repetition teaches it to copy (a first tiny model trained with the
goal only at the top never learned to use it: step accuracy 0.46).
"""
from __future__ import annotations

import json

from .episodes import Node, Step

SYSTEM, USER, ASSISTANT, EOS = "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>"
SPECIAL_TOKENS = (EOS, SYSTEM, USER, ASSISTANT)

SYSTEM_PROMPT = """\
You are a phone operating agent. You see the current screen of an Android phone as a list of \
interface elements, the user's goal, the app in the foreground and the actions you already \
took. Output exactly one next action and nothing else, in one of these forms:
do(action="Launch", app="name") opens an app by its name.
do(action="Tap", element=[x,y]) taps the element whose center is [x,y].
do(action="Type", text="words") types into the focused text field.
do(action="Swipe", start=[x1,y1], end=[x2,y2]) scrolls or swipes between two points.
do(action="Long Press", element=[x,y]) presses and holds an element.
do(action="Double Tap", element=[x,y]) taps an element twice quickly.
do(action="Back") goes back. do(action="Home") goes to the home screen.
do(action="Wait", duration="2 seconds") waits for the page to load.
finish(message="text") ends the task when the goal is done.
Rules: coordinates run from 0 to 999 on both axes, with the origin at the top left. \
Before typing, tap the text field to focus it. If the app you need is not in the foreground, \
launch it first. If the target is not visible, swipe to scroll the list. If the page is still \
loading, wait. Never tap an element that is not on the screen. Do not repeat an action that \
already failed. When every part of the goal is done, call finish with a short summary."""


def _q(text: str) -> str:
    """Quoted on one line: quotes, backslashes and line breaks escaped as in a JSON string."""
    return json.dumps(text, ensure_ascii=False)


def render_node(node: Node) -> str:
    """One screen line, e.g. ``Button "Send" id=send [912,870] click`` or ``FrameLayout``."""
    cls = node.cls.rsplit(".", 1)[-1]
    parts = [cls]
    if node.text:
        parts.append(_q(node.text))
    if node.content_desc:
        parts.append("desc=" + _q(node.content_desc))
    if node.resource_id:
        parts.append("id=" + node.resource_id.rsplit("/", 1)[-1])
    flags = [flag for flag, on in (("click", node.clickable), ("edit", node.editable),
                                   ("scroll", node.scrollable)) if on]
    if flags:  # only elements an action can target carry their center point
        cx, cy = node.center
        parts.append(f"[{cx},{cy}]")
    return " ".join(parts + flags)


def render_prompt(step: Step) -> str:
    """The full model input for one step, ending where the action should begin.

    Args:
        step: the episode step.
    Returns:
        Prompt text; the model continues it with the action and EOS.
    """
    history = "\n".join(f"{i + 1}. {h}" for i, h in enumerate(step.history)) or "none"
    screen = "\n".join(render_node(n) for n in step.screen)
    return (f"{SYSTEM}\n{SYSTEM_PROMPT}\n{USER}\nGoal: {step.goal}\nApp: {step.app}\n"
            f"History:\n{history}\nScreen:\n{screen}\nTask: {step.goal}\n{ASSISTANT}\n")


def shared_prefix() -> str:
    """The prompt prefix every step shares (system prompt up to the user turn)."""
    return f"{SYSTEM}\n{SYSTEM_PROMPT}\n{USER}\n"
