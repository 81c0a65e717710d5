"""Tests of workbench.task.prompt: the shared system prompt and the rendering of one step."""
from __future__ import annotations

import re

import pytest

from workbench.task.episodes import Node, Step
from workbench.task.grammar import ACTION_TYPES, Action, try_parse
from workbench.task.prompt import (
    ASSISTANT, EOS, SPECIAL_TOKENS, SYSTEM, SYSTEM_PROMPT, USER, render_node, render_prompt,
    shared_prefix,
)


def node(cls="android.widget.Button", text="", desc="", rid="", bounds=(0, 0, 10, 10),
         click=False, edit=False, scroll=False) -> Node:
    return Node(cls, text, desc, rid, bounds, click, edit, scroll)


def make_step(history=(), screen=None) -> Step:
    screen = screen if screen is not None else (
        node("android.widget.TextView", text="Inbox", rid="com.x:id/title", bounds=(40, 40, 600, 100)),
        node(desc="Send", rid="com.x:id/send", bounds=(800, 850, 960, 920), click=True),
        node("androidx.recyclerview.widget.RecyclerView", rid="com.x:id/list", bounds=(0, 120, 999, 930),
             scroll=True),
    )
    return Step("ep", len(history), "Send hi to Mom", "Messages", tuple(history), tuple(screen),
                'do(action="Tap", element=[880,885])', (800, 850, 960, 920))


def screen_lines(prompt: str) -> list[str]:
    body = prompt.split("\nScreen:\n", 1)[1]
    assert body.endswith(f"\n{ASSISTANT}\n")
    body = body[: -len(f"\n{ASSISTANT}\n")].rsplit("\nTask: ", 1)[0]  # the restated goal comes last
    return body.split("\n") if body else []


# ---- the system prompt --------------------------------------------------------------------------

def test_system_prompt_is_long():
    assert len(SYSTEM_PROMPT.split()) >= 200
    assert len(re.findall(r"\w+|[^\w\s]", SYSTEM_PROMPT)) >= 200


@pytest.mark.parametrize("kind", ACTION_TYPES)
def test_system_prompt_documents_every_action(kind):
    needle = "finish(message=" if kind == "finish" else f'do(action="{kind}"'
    assert needle in SYSTEM_PROMPT


def test_system_prompt_examples_parse():
    """Every example call of the system prompt without placeholder coordinates is valid grammar."""
    calls = re.findall(r'(?:do|finish)\((?:[^()"]|"[^"]*")*\)', SYSTEM_PROMPT)
    concrete = [c for c in calls if "[x" not in c]
    parsed = {try_parse(c).type for c in concrete if try_parse(c) is not None}
    assert len(concrete) >= 6 and all(try_parse(c) is not None for c in concrete)
    assert {"Launch", "Type", "Back", "Home", "Wait", "finish"} <= parsed
    assert "0 to 999" in SYSTEM_PROMPT


def test_special_tokens():
    assert set(SPECIAL_TOKENS) == {EOS, SYSTEM, USER, ASSISTANT}
    assert len(set(SPECIAL_TOKENS)) == 4
    for tok in SPECIAL_TOKENS:
        assert tok not in SYSTEM_PROMPT


def test_shared_prefix():
    p = shared_prefix()
    assert p == f"{SYSTEM}\n{SYSTEM_PROMPT}\n{USER}\n"
    assert p == shared_prefix()


# ---- rendering the committed eval steps ---------------------------------------------------------

def test_every_eval_prompt(eval_steps):
    prefix = shared_prefix()
    for s in eval_steps:
        p = render_prompt(s)
        assert p.startswith(prefix)
        assert p.endswith(f"{ASSISTANT}\n")
        rest = p[len(prefix):]
        assert rest.startswith(f"Goal: {s.goal}\nApp: {s.app}\nHistory:\n")
        assert rest.endswith(f"\nTask: {s.goal}\n{ASSISTANT}\n")  # the goal restated last
        assert all(tok not in rest[:-len(ASSISTANT) - 1] for tok in SPECIAL_TOKENS)
        # every history action, numbered, in order
        hist = rest.split("History:\n", 1)[1].split("\nScreen:\n", 1)[0]
        if s.history:
            assert hist.split("\n") == [f"{i + 1}. {h}" for i, h in enumerate(s.history)]
        else:
            assert hist == "none"
        # one line per node, in order
        lines = screen_lines(p)
        assert lines == [render_node(n) for n in s.screen]
        assert len(lines) == len(s.screen)
        assert EOS not in p


def test_tap_targets_are_visible_as_written(eval_steps):
    """The center of the target element appears in the prompt exactly as the target writes it."""
    n = 0
    for s in eval_steps:
        a = s.action
        if a.element is None:
            continue
        written = f"[{a.element[0]},{a.element[1]}]"
        assert written in s.target
        assert any(written in line.split(" ") for line in screen_lines(render_prompt(s)))
        n += 1
    assert n > 100


def test_prompt_is_deterministic(eval_steps):
    s = eval_steps[3]
    assert render_prompt(s) == render_prompt(s)


# ---- hand-made steps ----------------------------------------------------------------------------

def test_empty_history_renders_none():
    p = render_prompt(make_step())
    assert "\nHistory:\nnone\nScreen:\n" in p


def test_history_is_numbered():
    hist = ('do(action="Launch", app="Messages")', 'do(action="Tap", element=[1,2])',
            'do(action="Type", text="say \\"hi\\"")')
    p = render_prompt(make_step(history=hist))
    assert ('History:\n1. do(action="Launch", app="Messages")\n2. do(action="Tap", element=[1,2])\n'
            '3. do(action="Type", text="say \\"hi\\"")\nScreen:\n') in p


def test_full_prompt_layout():
    p = render_prompt(make_step())
    assert p == (f"{SYSTEM}\n{SYSTEM_PROMPT}\n{USER}\nGoal: Send hi to Mom\nApp: Messages\n"
                 "History:\nnone\nScreen:\n"
                 'TextView "Inbox" id=title\n'
                 'Button desc="Send" id=send [880,885] click\n'
                 "RecyclerView id=list [499,525] scroll\n"
                 "Task: Send hi to Mom\n"
                 f"{ASSISTANT}\n")


def test_empty_screen():
    p = render_prompt(make_step(screen=()))
    assert p.endswith(f"Screen:\n\nTask: Send hi to Mom\n{ASSISTANT}\n")
    assert screen_lines(p) == []


@pytest.mark.parametrize("click", [False, True])
@pytest.mark.parametrize("edit", [False, True])
@pytest.mark.parametrize("scroll", [False, True])
def test_node_flags(click, edit, scroll):
    line = render_node(node(bounds=(100, 200, 300, 401), click=click, edit=edit, scroll=scroll))
    flags = [f for f, on in (("click", click), ("edit", edit), ("scroll", scroll)) if on]
    # only an element an action can target carries its center point
    assert line == " ".join(["Button"] + (["[200,300]"] if flags else []) + flags)


@pytest.mark.parametrize("n,line", [
    (node("android.widget.Button", text="Send", desc="Send message", rid="com.a:id/send",
          bounds=(800, 850, 960, 920), click=True),
     'Button "Send" desc="Send message" id=send [880,885] click'),
    (node("android.widget.EditText", text="Search", rid="com.android.launcher:id/search",
          bounds=(60, 850, 940, 920), click=True, edit=True),
     'EditText "Search" id=search [500,885] click edit'),
    (node("Button", bounds=(0, 0, 999, 999), click=True), "Button [499,499] click"),  # no package prefix
    (node("android.view.View", rid="divider", bounds=(0, 10, 999, 12)), "View id=divider"),
    (node("android.widget.ImageView", desc="Battery 81 percent", bounds=(900, 0, 980, 28)),
     'ImageView desc="Battery 81 percent"'),
    (node("a.b.C", text="Café ☕", bounds=(0, 0, 1, 1), scroll=True), 'C "Café ☕" [0,0] scroll'),
])
def test_node_line_format(n, line):
    assert render_node(n) == line


@pytest.mark.parametrize("bounds", [(0, 0, 999, 999), (800, 850, 960, 920), (13, 27, 14, 90), (998, 0, 999, 1)])
def test_node_center_written_as_an_action_writes_it(bounds):
    n = node(bounds=bounds, click=True)
    tap = Action("Tap", element=n.center).to_text()
    written = tap[tap.index("["): tap.index("]") + 1]
    assert f" {written} " in render_node(n) + " "
    assert re.search(r"\[\d{1,3},\d{1,3}\]", render_node(n)).group(0) == written


def test_node_with_newline_stays_on_one_line():
    step = make_step(screen=(node(text="line one\nline two", click=True), node(desc="x")))
    assert len(screen_lines(render_prompt(step))) == 2
