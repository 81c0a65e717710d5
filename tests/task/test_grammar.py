"""Tests of workbench.task.grammar: the Action record, its canonical text and the parser."""
from __future__ import annotations

import pytest

from workbench.task.grammar import (
    ACTION_TYPES, EXTRA_TYPES, TAP_LIKE, Action, ActionParseError, extract_answer, parse_action,
    try_parse,
)

# (text, expected Action): every action type of the grammar, with its fields.
GRAMMAR_CASES = [
    ('do(action="Launch", app="Settings")', Action("Launch", app="Settings")),
    ('do(action="Tap", element=[500,870])', Action("Tap", element=(500, 870))),
    ('do(action="Type", text="hello world")', Action("Type", text="hello world")),
    ('do(action="Swipe", start=[500,800], end=[500,200])',
     Action("Swipe", start=(500, 800), end=(500, 200))),
    ('do(action="Long Press", element=[10,20])', Action("Long Press", element=(10, 20))),
    ('do(action="Double Tap", element=[0,999])', Action("Double Tap", element=(0, 999))),
    ('do(action="Back")', Action("Back")),
    ('do(action="Home")', Action("Home")),
    ('do(action="Wait", duration="2 seconds")', Action("Wait", duration="2 seconds")),
    ('do(action="Wait")', Action("Wait")),
    ('finish(message="done")', Action("finish", message="done")),
    ('finish()', Action("finish", message="")),
]

EXTRA_CASES = [
    ('do(action="Type_Name", text="Alice")', Action("Type_Name", text="Alice")),
    ('do(action="Take_over", message="please log in")', Action("Take_over", message="please log in")),
    ('do(action="Interact")', Action("Interact")),
    ('do(action="Note", message="price is $5")', Action("Note", message="price is $5")),
    # instruction= is a field of the real agent the workbench ignores
    ('do(action="Call_API", instruction="sum the prices")', Action("Call_API")),
]


@pytest.mark.parametrize("text,want", GRAMMAR_CASES + EXTRA_CASES,
                         ids=[c[0] for c in GRAMMAR_CASES + EXTRA_CASES])
def test_parse_every_action_type(text, want):
    got = parse_action(text)
    assert got == want
    assert try_parse(text) == want


def test_cases_cover_every_type():
    covered = {want.type for _, want in GRAMMAR_CASES + EXTRA_CASES}
    assert covered == set(ACTION_TYPES) | set(EXTRA_TYPES)
    assert set(TAP_LIKE) <= set(ACTION_TYPES)


@pytest.mark.parametrize("text,want", GRAMMAR_CASES + EXTRA_CASES,
                         ids=[c[0] for c in GRAMMAR_CASES + EXTRA_CASES])
def test_only_fields_of_the_type_are_set(text, want):
    got = parse_action(text)
    set_fields = {k for k in ("element", "start", "end", "text", "app", "duration", "message")
                  if getattr(got, k) is not None}
    allowed = {"Launch": {"app"}, "Tap": {"element"}, "Long Press": {"element"},
               "Double Tap": {"element"}, "Type": {"text"}, "Type_Name": {"text"},
               "Swipe": {"start", "end"}, "Wait": {"duration"}, "finish": {"message"},
               "Take_over": {"message"}, "Note": {"message"}}.get(got.type, set())
    assert set_fields <= allowed


ROUND_TRIP = [want for _, want in GRAMMAR_CASES + EXTRA_CASES] + [
    Action("Type", text='say "hi"'),
    Action("Type", text="it's fine"),
    Action("Type", text="back\\slash and \\\"both\\\""),
    Action("Type", text="tab\there"),
    Action("Type", text="Café ☕ 東京"),
    Action("finish", message='She said "it\'s done".'),
    Action("Launch", app="Google Maps"),
    Action("Tap", element=(0, 0)),
    Action("Tap", element=(999, 999)),
    Action("Swipe", start=(999, 0), end=(0, 999)),
    Action("Wait", duration="5 seconds"),
]


@pytest.mark.parametrize("action", ROUND_TRIP, ids=[a.to_text() for a in ROUND_TRIP])
def test_round_trip(action):
    text = action.to_text()
    assert parse_action(text) == action
    # canonical text is a fixed point
    assert parse_action(text).to_text() == text


@pytest.mark.parametrize("action,text", [
    (Action("Tap", element=(500, 870)), 'do(action="Tap", element=[500,870])'),
    (Action("Swipe", start=(1, 2), end=(3, 4)), 'do(action="Swipe", start=[1,2], end=[3,4])'),
    (Action("Launch", app="Clock"), 'do(action="Launch", app="Clock")'),
    (Action("Type", text='a"b'), 'do(action="Type", text="a\\"b")'),
    (Action("Wait", duration="2 seconds"), 'do(action="Wait", duration="2 seconds")'),
    (Action("Back"), 'do(action="Back")'),
    (Action("finish", message="ok"), 'finish(message="ok")'),
    (Action("finish"), 'finish(message="")'),
])
def test_canonical_text(action, text):
    assert action.to_text() == text


@pytest.mark.parametrize("text", ["line one\nline two", "a\rb"])
def test_round_trip_text_with_line_breaks(text):
    action = Action("Type", text=text)
    assert try_parse(action.to_text()) == action


TAP = Action("Tap", element=(500, 870))


@pytest.mark.parametrize("text", [
    '<answer>do(action="Tap", element=[500,870])</answer>',
    '<answer> do(action="Tap", element=[500,870]) </answer>',
    '<answer>\ndo(action="Tap", element=[500,870])\n</answer>',
    '<think>The Send button is at [500,870].</think><answer>do(action="Tap", element=[500,870])</answer>',
    '<think>first do(action="Back") then?\nno: tap.</think>\n<answer>do(action="Tap", element=[500,870])</answer>',
    '<think>reasoning</think>do(action="Tap", element=[500,870])',
    '<think>x</think><think>y</think><answer>do(action="Tap", element=[500,870])</answer>',
    # unterminated <answer>: the rest of the text is the answer
    '<answer>do(action="Tap", element=[500,870])',
    '<think>ok</think><answer>do(action="Tap", element=[500,870])  \n',
    # whitespace variants
    '  do(action="Tap", element=[500,870])  ',
    'do( action = "Tap" , element = [ 500 , 870 ] )',
    'do(action="Tap",\n   element=[500,870],\n)',
    "do(action='Tap', element=[500,870])",
    'do(action="Tap", element=(500, 870))',
    '\tdo(action="Tap", element=[500,870])\n',
])
def test_wrappers_and_whitespace(text):
    assert parse_action(text) == TAP
    assert try_parse(text) == TAP


def test_think_only_block_is_stripped():
    assert extract_answer("<think>a\nb</think>  finish(message=\"x\") ") == 'finish(message="x")'
    assert extract_answer('<answer>do(action="Home")</answer> trailing') == 'do(action="Home")'


@pytest.mark.parametrize("text,message", [
    ('finish(message="say \\"hi\\"")', 'say "hi"'),
    ("finish(message='it\\'s done')", "it's done"),
    ('finish(message="it\'s done")', "it's done"),
    ("finish(message='say \"hi\"')", 'say "hi"'),
    ('finish(message="back\\\\slash")', "back\\slash"),
    ('finish(message="two\\nlines")', "two\nlines"),
    ('finish(message="Café ☕")', "Café ☕"),
    ('finish(message="")', ""),
    ('finish(message="do(action=\\"Back\\")")', 'do(action="Back")'),
    ('finish(message="a", extra="ignored")', "a"),
])
def test_quotes_and_escapes_in_text(text, message):
    assert parse_action(text) == Action("finish", message=message)


@pytest.mark.parametrize("text,value", [
    ('do(action="Type", text="say \\"hi\\"")', 'say "hi"'),
    ("do(action=\"Type\", text=\"I'll be late\")", "I'll be late"),
    ("do(action='Type', text='I\\'ll be late')", "I'll be late"),
    ('do(action="Type", text="")', ""),
])
def test_quotes_in_type_text(text, value):
    assert parse_action(text) == Action("Type", text=value)


MALFORMED = [
    "",
    "   ",
    "<answer></answer>",
    "<think>only thinking</think>",
    'do(action="Tap", element=[500,870]',          # truncated call
    'do(action="Tap", element=[500,',
    'do(action="Ty',
    "do(",
    'do(action="Fly", element=[1,2])',            # unknown action
    'do(action="tap", element=[1,2])',            # case matters
    'do(action="finish", message="x")',           # finish is not a do() action
    'do(element=[1,2])',                          # no action=
    'click(element=[1,2])',                       # unknown function
    'Finish(message="x")',
    'os.system("x")',
    'do.x(action="Back")',
    'do(action="Back")(1)',
    'do("Tap", [1,2])',                           # positional arguments
    'do("Back")',
    'finish("done")',
    'do(action="Tap", element=[x,y])',            # non-literal arguments
    'do(action="Tap", element=[1+1,2])',
    'do(action="Type", text=name)',
    'do(action="Type", text=f"hi {x}")',
    'finish(message=open("/etc/passwd").read())',
    'do(action=ACTION)',
    'do(**{"action": "Back"})',                   # **kwargs
    'do(action="Tap", element=[1000,5])',         # out of 0..999
    'do(action="Tap", element=[5,1000])',
    'do(action="Tap", element=[-1,5])',
    'do(action="Swipe", start=[0,0], end=[0,1200])',
    'do(action="Long Press", element=[999,-3])',
    'do(action="Tap", element=[1,2,3])',          # 3-element point
    'do(action="Tap", element=[1])',
    'do(action="Tap", element=[])',
    'do(action="Tap", element=[1.5,2])',          # non-integers
    'do(action="Tap", element=[True,False])',
    'do(action="Tap", element="500,870")',
    'do(action="Tap", element=None)',
    'do(action="Tap")',                           # missing required field
    'do(action="Long Press")',
    'do(action="Double Tap", text="x")',
    'do(action="Swipe", start=[1,2])',
    'do(action="Swipe", end=[1,2])',
    'do(action="Type")',
    'do(action="Type_Name")',
    'do(action="Launch")',
    '"do(action=\\"Back\\")"',                   # a bare string
    "Tap the send button",
    "[500, 870]",
    "42",
    "None",
    "__import__('os').system('x')",               # eval injection attempts
    "do(action=__import__('os').system('x'))",
    'do(action="Back", x=__import__("os").system("x"))',
    'finish(message=__import__("os").getcwd())',
    'do(action="Back"); __import__("os").system("x")',
    'do(action="Back")\nfinish(message="x")',     # two calls
    'do(action="Back") do(action="Home")',
    'lambda: do(action="Back")',
    '(lambda: 1)()',
    'finish(message="a\x00b")',                   # NUL byte
    "(" * 300 + ")" * 300,
]


@pytest.mark.parametrize("text", MALFORMED, ids=[repr(t)[:60] for t in MALFORMED])
def test_malformed_is_a_parse_failure(text):
    assert try_parse(text) is None
    with pytest.raises(ActionParseError):
        parse_action(text)


@pytest.mark.parametrize("text", MALFORMED, ids=[repr(t)[:60] for t in MALFORMED])
def test_parse_error_is_a_value_error_with_a_reason(text):
    with pytest.raises(ValueError) as info:
        parse_action(text)
    assert type(info.value) is ActionParseError
    assert str(info.value)


@pytest.mark.parametrize("text", [
    'do(action="Tap", element={[1]: 2})',
    'do(action="Tap", element={[1, 2]})',
    'finish(message={[]: 0})',
])
def test_unhashable_literal_is_a_parse_failure(text):
    assert try_parse(text) is None


def test_deeply_nested_expression_is_a_parse_failure():
    assert try_parse("-" * 3000 + "1") is None


def test_injection_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    text = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    assert try_parse(text) is None
    assert try_parse(f"do(action=\"Back\", x={text})") is None
    assert not marker.exists()


def test_duplicate_keyword_last_wins():
    # ast accepts a repeated keyword; the parser keeps the last value (documented behaviour here)
    assert parse_action('do(action="Tap", element=[1,2], element=[3,4])') == Action("Tap", element=(3, 4))


@pytest.mark.parametrize("start,end,direction", [
    ((500, 500), (900, 500), "right"),
    ((900, 500), (100, 500), "left"),
    ((500, 800), (500, 200), "up"),
    ((500, 200), (500, 800), "down"),
    ((500, 800), (520, 200), "up"),        # main axis wins over a small drift
    ((100, 500), (900, 540), "right"),
    ((100, 100), (300, 300), "right"),     # tie |dx| == |dy|: horizontal axis
    ((300, 300), (100, 100), "left"),
    ((100, 300), (300, 100), "right"),
    ((300, 100), (100, 300), "left"),
])
def test_swipe_direction(start, end, direction):
    a = Action("Swipe", start=start, end=end)
    assert a.swipe_direction() == direction
    assert parse_action(a.to_text()).swipe_direction() == direction


@pytest.mark.parametrize("action", [Action("Tap", element=(1, 2)), Action("Back"),
                                    Action("Swipe", start=(1, 2))])
def test_swipe_direction_of_non_swipe_is_none(action):
    assert action.swipe_direction() is None


def test_action_is_frozen_and_hashable():
    a = Action("Tap", element=(1, 2))
    with pytest.raises(AttributeError):
        a.type = "Back"  # type: ignore[misc]
    assert len({a, Action("Tap", element=(1, 2))}) == 1
