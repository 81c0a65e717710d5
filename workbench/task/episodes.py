"""Episode records of the phone-agent task: schema, validation and JSONL loading.

One JSON object per line, one agent *step* per line (see data/README.md). Steps of the same
episode share ``episode_id`` and are numbered by ``step`` from 0. Validation names the file,
the line and the field of the first problem it finds.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .grammar import Action, ActionParseError, parse_action

DEFAULT_EPISODES = Path(__file__).resolve().parents[2] / "data" / "episodes" / "eval.jsonl"  # the eval split
DEFAULT_CALIB = DEFAULT_EPISODES.with_name("calib.jsonl")  # the calibration split


class EpisodeError(ValueError):
    """An episode file or record does not follow the schema."""


@dataclass(frozen=True)
class Node:
    """One accessibility-tree node, as AndroidControl records it; bounds are [x1, y1, x2, y2] in 0..999."""

    cls: str
    text: str
    content_desc: str
    resource_id: str
    bounds: tuple[int, int, int, int]
    clickable: bool
    editable: bool
    scrollable: bool

    @property
    def center(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.bounds
        return ((x1 + x2) // 2, (y1 + y2) // 2)

    def to_json(self) -> dict:
        d = asdict(self)
        d["class"] = d.pop("cls")
        d["bounds"] = list(self.bounds)
        return d


@dataclass(frozen=True)
class Step:
    """One step of an episode: what the agent sees and the action it should take."""

    episode_id: str
    step: int
    goal: str
    app: str
    history: tuple[str, ...]
    screen: tuple[Node, ...]
    target: str
    target_box: tuple[int, int, int, int] | None

    @property
    def action(self) -> Action:
        return parse_action(self.target)

    def to_json(self) -> dict:
        return {
            "episode_id": self.episode_id, "step": self.step, "goal": self.goal, "app": self.app,
            "history": list(self.history), "screen": [n.to_json() for n in self.screen],
            "target": self.target,
            "target_box": list(self.target_box) if self.target_box else None,
        }


_STEP_FIELDS = {
    "episode_id": str, "step": int, "goal": str, "app": str, "history": list, "screen": list,
    "target": str, "target_box": (list, type(None)),
}
_NODE_FIELDS = {
    "class": str, "text": str, "content_desc": str, "resource_id": str, "bounds": list,
    "clickable": bool, "editable": bool, "scrollable": bool,
}


def _box(value, where: str) -> tuple[int, int, int, int]:
    if (not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise EpisodeError(f"{where}: expected [x1, y1, x2, y2] integers, got {value!r}")
    x1, y1, x2, y2 = value
    if not (0 <= x1 <= x2 <= 999 and 0 <= y1 <= y2 <= 999):
        raise EpisodeError(f"{where}: box {value!r} must satisfy 0 <= x1 <= x2 <= 999 and "
                           f"0 <= y1 <= y2 <= 999")
    return (x1, y1, x2, y2)


def _check_fields(obj: dict, spec: dict, where: str) -> None:
    if not isinstance(obj, dict):
        raise EpisodeError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in spec if k not in obj]
    if missing:
        raise EpisodeError(f"{where}: missing field {missing[0]!r}")
    unknown = sorted(set(obj) - set(spec))
    if unknown:
        raise EpisodeError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(spec)})")
    for key, kind in spec.items():
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise EpisodeError(f"{where}: field {key!r} has type {type(obj[key]).__name__}")


def step_from_json(obj: dict, where: str = "record") -> Step:
    """Validate one record and build a Step.

    Args:
        obj: the decoded JSON object.
        where: prefix for error messages, e.g. "eval.jsonl line 3".
    Returns:
        The Step.
    Raises:
        EpisodeError: naming `where` and the field at fault.
    """
    _check_fields(obj, _STEP_FIELDS, where)
    if obj["step"] < 0:
        raise EpisodeError(f"{where}: field 'step' must be >= 0")
    nodes = []
    for i, n in enumerate(obj["screen"]):
        at = f"{where}: screen[{i}]"
        _check_fields(n, _NODE_FIELDS, at)
        nodes.append(Node(n["class"], n["text"], n["content_desc"], n["resource_id"],
                          _box(n["bounds"], f"{at}.bounds"), n["clickable"], n["editable"],
                          n["scrollable"]))
    for i, h in enumerate(obj["history"]):
        if not isinstance(h, str):
            raise EpisodeError(f"{where}: history[{i}] must be an action string")
    try:
        action = parse_action(obj["target"])
    except ActionParseError as e:
        raise EpisodeError(f"{where}: field 'target' is not a valid action: {e}") from None
    box = None if obj["target_box"] is None else _box(obj["target_box"], f"{where}: target_box")
    if action.type in ("Tap", "Long Press", "Double Tap") and box is None:
        raise EpisodeError(f"{where}: field 'target_box' is required for a {action.type} target")
    return Step(obj["episode_id"], obj["step"], obj["goal"], obj["app"], tuple(obj["history"]),
                tuple(nodes), obj["target"], box)


def load_steps(path: str | Path, limit: int | None = None) -> list[Step]:
    """Load and validate a JSONL episode file (one step per line).

    Args:
        path: the .jsonl file.
        limit: keep only the first `limit` steps.
    Returns:
        The steps in file order.
    Raises:
        EpisodeError: the file is missing, empty or a line is invalid (file, line and field named).
    """
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"episode file not found: {path} (pass --episodes with a .jsonl file; "
                           f"the default is data/episodes/eval.jsonl)")
    if limit is not None and limit < 1:
        raise EpisodeError(f"limit must be >= 1, got {limit}")
    steps = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path.name} line {lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise EpisodeError(f"{where}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise EpisodeError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
            steps.append(step_from_json(obj, where))
            if limit is not None and len(steps) >= limit:
                break
    if not steps:
        raise EpisodeError(f"{path}: no steps found")
    return steps


def save_steps(steps, path: str | Path) -> None:
    """Write steps as JSONL (atomically: a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for s in steps:
            f.write(json.dumps(s.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
    tmp.replace(path)


def steps_hash(steps) -> str:
    """sha256 of the steps' canonical JSON (the data key of a measurement on a subset of a file)."""
    h = hashlib.sha256()
    for s in steps:
        h.update(json.dumps(s.to_json(), sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return h.hexdigest()


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (the episode-file key of the results store)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
