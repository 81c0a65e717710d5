"""Tests for workbench.task.open_autoglm: the messages Open-AutoGLM's agent sends, for a recorded step."""
from __future__ import annotations

import json

import pytest

from workbench.task import Step
from workbench.task.open_autoglm import (PromptError, assistant_turn, earlier_apps, messages, screen_info,
                                         system_prompt)

GOAL = 'Send a message to Mom saying "on my way"'
HISTORY = ('do(action="Launch", app="Messages")', 'do(action="Tap", element=[500,210])')


def _step(k: int, app: str = "Messages") -> Step:
    return Step("ep-1", k, GOAL, app, HISTORY[:k], (), 'do(action="Type", text="on my way")', None)


# Open-AutoGLM's context at the third step of this episode, restated from phone_agent/agent.py and
# phone_agent/model/client.py (MessageBuilder): the system prompt; the first user turn "{task}\n\n{screen_info}"
# with its image removed after the answer; each answer "<think>..</think><answer>..</answer>"; later user turns
# "** Screen Info **\n\n{screen_info}"; the image first, then the text, in the latest user turn only.
EXPECTED_THIRD_STEP = [
    {"role": "system", "content": "SYSTEM"},
    {"role": "user", "content": [{"type": "text", "text": GOAL + '\n\n{"current_app": "Home screen"}'}]},
    {"role": "assistant", "content": '<think></think><answer>do(action="Launch", app="Messages")</answer>'},
    {"role": "user", "content": [{"type": "text", "text": '** Screen Info **\n\n{"current_app": "Messages"}'}]},
    {"role": "assistant", "content": '<think></think><answer>do(action="Tap", element=[500,210])</answer>'},
    {"role": "user", "content": [{"type": "image"},
                                 {"type": "text", "text": '** Screen Info **\n\n{"current_app": "Messages"}'}]},
]


def test_messages_restate_open_autoglms_layout_for_a_recorded_step():
    got = messages(_step(2), system="SYSTEM", apps=["Home screen", "Messages"])
    assert got == EXPECTED_THIRD_STEP
    assert sum(c.get("type") == "image" for m in got if isinstance(m["content"], list) for c in m["content"]) == 1


def test_the_first_step_sends_the_task_with_the_screen_info():
    got = messages(_step(0, app="Home screen"), system="S")
    assert got[1] == {"role": "user", "content": [{"type": "image"},
                                                  {"type": "text", "text": GOAL + '\n\n{"current_app": "Home screen"}'}]}
    assert len(got) == 2


def test_earlier_apps_come_from_the_episodes_steps():
    steps = [_step(0, "Home screen"), _step(1), _step(2)]
    assert earlier_apps(steps)[("ep-1", 2)] == ["Home screen", "Messages"]
    assert earlier_apps(steps[2:])[("ep-1", 2)] == ["Messages", "Messages"]  # absent steps: the step's own app


def test_screen_info_and_answers_are_the_agents_json_and_tags():
    assert json.loads(screen_info("微信")) == {"current_app": "微信"}
    assert "微信" in screen_info("微信")  # ensure_ascii=False, as the agent writes it
    assert assistant_turn("finish(message=\"done\")", "ok") == '<think>ok</think><answer>finish(message="done")</answer>'


@pytest.mark.parametrize("lang, marker", [("en", "# Rules"), ("zh", "# 规则")])
def test_system_prompts_state_the_format_and_every_action(lang, marker):
    text = system_prompt(lang)
    assert marker in text and "<answer>" in text and "2026-01-01" in text
    for action in ("Launch", "Tap", "Type", "Swipe", "Long Press", "Double Tap", "Back", "Home", "Wait"):
        assert f'do(action="{action}"' in text
    assert "finish(message=" in text
    assert system_prompt(lang) == text  # fixed date: reproducible


def test_bad_choices_are_named():
    with pytest.raises(PromptError, match="en, zh"):
        system_prompt("fr")
    with pytest.raises(PromptError, match="workbench, open-autoglm"):
        system_prompt("en", source="mine")
    try:
        import phone_agent  # noqa: F401
    except ImportError:
        with pytest.raises(PromptError, match="zai-org/Open-AutoGLM"):
            system_prompt("en", source="open-autoglm")
    with pytest.raises(PromptError, match="1 entries for 2 earlier turns"):
        messages(_step(2), apps=["Messages"])
