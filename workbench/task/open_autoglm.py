"""The `open-autoglm` prompt mode: the chat messages Open-AutoGLM's agent sends its model for one step.

Open-AutoGLM (zai-org/Open-AutoGLM, ``phone_agent/agent.py``) builds its context as:
- a system message (its system prompt, in Chinese or English);
- the first user turn: the screenshot, then the text ``"{task}\\n\\n{screen_info}"``;
- every later user turn: the screenshot, then ``"** Screen Info **\\n\\n{screen_info}"``;
- ``screen_info`` is ``json.dumps({"current_app": app}, ensure_ascii=False)``;
- after each answer the screenshot is removed from that user turn (only the latest screenshot stays),
  and the answer stays as an assistant turn ``"<think>{thinking}</think><answer>{action}</answer>"``.

`messages(step)` rebuilds that context for a recorded step from its goal, app and history, in the
chat format transformers' chat templates read (``{"type": "image"}`` where the agent sends the PNG
as a base64 ``image_url``). Recorded steps keep no thinking, so earlier assistant turns carry an
empty ``<think></think>``; the apps of earlier turns come from the earlier steps where the caller
has them (`apps`), else the step's own app.

The system prompt: Open-AutoGLM's own where its package (``phone_agent``) is installed
(`system_prompt(lang, source="open-autoglm")`, exactly as the agent sends it, dated today), else the
workbench's own text (`source="workbench"`, the default): the same structure (date, output format
``<think>..</think><answer>..</answer>``, the action list, the rules) in our words, with a fixed
date so that prompts, and so measurements, are reproducible. Plain Python: no torch, no images.
"""
from __future__ import annotations

import json

from .episodes import Step

PROMPT_MODES = ("text", "open-autoglm")
LANGUAGES = ("en", "zh")
SOURCES = ("workbench", "open-autoglm")
PROMPT_DATE = "2026-01-01"  # the workbench prompt's fixed date (the real agent writes today's)

_ACTIONS_EN = """\
- do(action="Launch", app="xxx"): open an app by name.
- do(action="Tap", element=[x,y]): tap the point [x,y]; coordinates run from (0,0) at the top left to \
(999,999) at the bottom right.
- do(action="Type", text="xxx"): type into the focused input field.
- do(action="Swipe", start=[x1,y1], end=[x2,y2]): swipe from start to end, e.g. to scroll.
- do(action="Long Press", element=[x,y]): press and hold.
- do(action="Double Tap", element=[x,y]): tap twice quickly.
- do(action="Back"): go back.  do(action="Home"): go to the home screen.
- do(action="Wait", duration="x seconds"): wait for the page to load.
- finish(message="xxx"): end the task, saying what was done."""

_PROMPT_EN = """\
The current date: {date}
# Setup
You are an agent that operates an Android phone to carry out the user's instruction. Each turn you \
receive a screenshot of the phone and the app in the foreground, and you answer with exactly one \
action.
# Output format
<think>{{your reasoning}}</think>
<answer>{{one action}}</answer>
# Actions
{actions}
# Rules
1. If the current app is not the one the task needs, launch it first.
2. If the element you need is not on the screen, swipe to find it.
3. Tap a text field before typing into it.
4. If the page is still loading, wait; do not tap anything that is not on the screen.
5. Do not repeat an action that did not change the screen; try another way.
6. When every part of the task is done, call finish with a short summary."""

_ACTIONS_ZH = """\
- do(action="Launch", app="xxx")：按名称打开应用。
- do(action="Tap", element=[x,y])：点击坐标 [x,y]；坐标从左上角 (0,0) 到右下角 (999,999)。
- do(action="Type", text="xxx")：在当前聚焦的输入框中输入文字。
- do(action="Swipe", start=[x1,y1], end=[x2,y2])：从起点滑动到终点，例如用于滚动。
- do(action="Long Press", element=[x,y])：长按。
- do(action="Double Tap", element=[x,y])：快速点击两次。
- do(action="Back")：返回。 do(action="Home")：回到主屏幕。
- do(action="Wait", duration="x seconds")：等待页面加载。
- finish(message="xxx")：结束任务，并说明完成了什么。"""

_PROMPT_ZH = """\
今天的日期是: {date}
# 设定
你是一个操作安卓手机、完成用户指令的智能体。每一轮你会收到手机的截图和前台应用，并只输出一个操作。
# 输出格式
<think>{{你的思考}}</think>
<answer>{{一个操作}}</answer>
# 操作
{actions}
# 规则
1. 如果当前应用不是任务需要的应用，先启动它。
2. 如果需要的元素不在屏幕上，滑动查找。
3. 输入文字前先点击输入框。
4. 页面仍在加载时等待；不要点击屏幕上没有的元素。
5. 不要重复没有改变屏幕的操作，换一种方式。
6. 任务的每一部分都完成后，调用 finish 并简要总结。"""


class PromptError(ValueError):
    """An unknown prompt mode, language or system-prompt source (the message names the allowed ones)."""


def system_prompt(lang: str = "en", source: str = "workbench", date: str = PROMPT_DATE) -> str:
    """The system prompt of the open-autoglm mode.

    Args:
        lang: "en" or "zh".
        source: "workbench" (ours, reproducible) or "open-autoglm" (the agent's own, from its installed
            ``phone_agent`` package, dated today).
        date: the date the workbench prompt states.
    Raises:
        PromptError: unknown lang or source, or source "open-autoglm" without the package (how to install it).
    """
    if lang not in LANGUAGES:
        raise PromptError(f"prompt language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    if source not in SOURCES:
        raise PromptError(f"system prompt source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "open-autoglm":
        try:
            from phone_agent.config import get_system_prompt
        except ImportError:
            raise PromptError("Open-AutoGLM's own system prompt needs its package: `pip install -e .` in a "
                              "checkout of zai-org/Open-AutoGLM (or use source='workbench')") from None
        return get_system_prompt("cn" if lang == "zh" else "en")
    if lang == "zh":
        return _PROMPT_ZH.format(date=date, actions=_ACTIONS_ZH)
    return _PROMPT_EN.format(date=date, actions=_ACTIONS_EN)


def screen_info(app: str) -> str:
    """The JSON the agent sends with every screenshot, e.g. ``{"current_app": "Messages"}``."""
    return json.dumps({"current_app": app}, ensure_ascii=False)


def assistant_turn(action: str, thinking: str = "") -> str:
    """An answer as the agent keeps it in its context."""
    return f"<think>{thinking}</think><answer>{action}</answer>"


def _user_text(goal: str, app: str, first: bool) -> str:
    return f"{goal}\n\n{screen_info(app)}" if first else f"** Screen Info **\n\n{screen_info(app)}"


def messages(step: Step, *, system: str | None = None, lang: str = "en", apps=None) -> list[dict]:
    """The chat messages Open-AutoGLM sends for `step` (its screenshot is the one image).

    Args:
        step: the episode step (its history: the actions of the earlier turns).
        system: the system prompt (None: `system_prompt(lang)`).
        lang: "en" or "zh", for the default system prompt.
        apps: the foreground app of each earlier turn (len(step.history) entries); None: the step's app.
    Returns:
        [system, (user, assistant) per earlier action, user with {"type": "image"} and the text].
    """
    k = len(step.history)
    apps = list(apps) if apps is not None else [step.app] * k
    if len(apps) != k:
        raise PromptError(f"apps has {len(apps)} entries for {k} earlier turns")
    out = [{"role": "system", "content": system if system is not None else system_prompt(lang)}]
    for i, (action, app) in enumerate(zip(step.history, apps)):
        out.append({"role": "user", "content": [{"type": "text", "text": _user_text(step.goal, app, i == 0)}]})
        out.append({"role": "assistant", "content": assistant_turn(action)})
    out.append({"role": "user", "content": [{"type": "image"},
                                            {"type": "text", "text": _user_text(step.goal, step.app, k == 0)}]})
    return out


def earlier_apps(steps) -> dict:
    """(episode_id, step) -> the apps of that step's earlier turns, from the steps of the same episode
    present in `steps` (a turn whose step is absent takes the asking step's app)."""
    by_key = {(s.episode_id, s.step): s.app for s in steps}
    return {(s.episode_id, s.step): [by_key.get((s.episode_id, i), s.app) for i in range(len(s.history))]
            for s in steps}
