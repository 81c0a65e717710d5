"""The phone-agent task: episodes, action grammar, prompt and metrics (plain Python, no torch)."""
from .episodes import DEFAULT_CALIB, DEFAULT_EPISODES, EpisodeError, Node, Step, file_hash, load_steps, save_steps, step_from_json, steps_hash
from .grammar import Action, ActionParseError, parse_action, try_parse
from .metrics import StepScore, TaskScores, aggregate, score_step
from .prompt import EOS, SPECIAL_TOKENS, SYSTEM_PROMPT, render_prompt, shared_prefix

__all__ = [
    "DEFAULT_CALIB", "DEFAULT_EPISODES",
    "Action", "ActionParseError", "EOS", "EpisodeError", "Node", "SPECIAL_TOKENS", "SYSTEM_PROMPT",
    "Step", "StepScore", "TaskScores", "aggregate", "file_hash", "load_steps", "parse_action", "steps_hash",
    "render_prompt", "save_steps", "score_step", "shared_prefix", "step_from_json", "try_parse",
]
