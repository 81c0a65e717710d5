"""Episode records of the phone-agent task: schema, validation and JSONL loading.

One JSON object per line, one agent *step* per line (see data/README.md). Steps of the same
episode share ``episode_id`` and are numbered by ``step`` from 0. Validation names the file,
the line and the field of the first problem it finds.

A record may carry a ``screenshot``: the path of a PNG, relative to the JSONL file's folder, of the
screen the agent sees (what the real Open-AutoGLM agent sends its vision-language model). With a
screenshot the accessibility tree (``screen``) is optional. ``load_steps`` checks every screenshot:
the file exists, is a complete PNG (signature, chunks and CRCs) and is 28..8192 px in each
dimension.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

from .grammar import Action, ActionParseError, parse_action

DEFAULT_EPISODES = Path(__file__).resolve().parents[2] / "data" / "episodes" / "eval.jsonl"  # the eval split
DEFAULT_CALIB = DEFAULT_EPISODES.with_name("calib.jsonl")  # the calibration split

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Screenshot sides in pixels: at least one 28-px unit of GLM-4.1V's vision encoder (a 14-px patch,
# merged 2 x 2), at most 8192.
MIN_SCREENSHOT_PX, MAX_SCREENSHOT_PX = 28, 8192


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
    screenshot: Path | None = None  # absolute path of the screen's PNG (None: the tree only)

    @property
    def action(self) -> Action:
        return parse_action(self.target)

    def to_json(self, base: str | Path | None = None) -> dict:
        """The JSON record; `screenshot` (only when set) as a posix path relative to `base`
        (default: the current directory), e.g. the folder of the JSONL file it is written to."""
        d = {
            "episode_id": self.episode_id, "step": self.step, "goal": self.goal, "app": self.app,
            "history": list(self.history), "screen": [n.to_json() for n in self.screen],
            "target": self.target,
            "target_box": list(self.target_box) if self.target_box else None,
        }
        if self.screenshot is not None:
            rel = os.path.relpath(os.path.abspath(self.screenshot), os.path.abspath(base or os.curdir))
            d["screenshot"] = rel.replace(os.sep, "/")
        return d


_STEP_FIELDS = {
    "episode_id": str, "step": int, "goal": str, "app": str, "history": list, "screen": list,
    "target": str, "target_box": (list, type(None)),
}
_OPTIONAL_STEP_FIELDS = {"screenshot": str}
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


def _check_fields(obj: dict, spec: dict, where: str, optional: dict | None = None) -> None:
    optional = optional or {}
    if not isinstance(obj, dict):
        raise EpisodeError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in spec if k not in obj]
    if missing:
        hint = " (required unless the record has a 'screenshot')" if missing[0] == "screen" and optional else ""
        raise EpisodeError(f"{where}: missing field {missing[0]!r}{hint}")
    unknown = sorted(set(obj) - set(spec) - set(optional))
    if unknown:
        raise EpisodeError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join([*spec, *optional])})")
    for key, kind in [*spec.items(), *((k, v) for k, v in optional.items() if k in obj)]:
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise EpisodeError(f"{where}: field {key!r} has type {type(obj[key]).__name__}")


def _regenerate_hint() -> str:
    return ("render it from the tree with `python scripts/render_screens.py --episodes FILE.jsonl`, or "
            "regenerate a shipped split with `python scripts/gen_episodes.py --split SPLIT --steps N --out FILE.jsonl` "
            "(see data/README.md)")


def _screenshot_path(value: str, where: str, base: str | Path | None) -> Path:
    """Resolve and check a record's `screenshot`; returns its absolute path."""
    at = f"{where}: field 'screenshot'"
    if not value.strip():
        raise EpisodeError(f"{at}: empty path (give a PNG path relative to the JSONL file's folder)")
    if "\\" in value or PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() \
            or PureWindowsPath(value).drive:
        raise EpisodeError(f"{at}: {value!r} must be a relative path with '/' separators (relative to the "
                           f"JSONL file's folder), so the data can be moved; absolute paths are refused")
    path = Path(os.path.normpath(os.path.join(os.path.abspath(base or os.curdir), value)))
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise EpisodeError(f"{at}: {value!r} {what}: {path}; {_regenerate_hint()}")
    try:
        with path.open("rb") as f:
            head = f.read(len(PNG_SIGNATURE))
    except OSError as e:
        raise EpisodeError(f"{at}: cannot read {path}: {e.strerror or e}") from None
    if head != PNG_SIGNATURE:
        raise EpisodeError(f"{at}: {path} is not a PNG file (its first bytes are {head[:8]!r}, not the PNG "
                           f"signature); save screenshots as PNG")
    from PIL import Image, UnidentifiedImageError  # here, so that tree-only files need no Pillow

    try:
        with Image.open(path) as im:
            fmt, (w, h) = im.format, im.size
            im.verify()  # every chunk's CRC up to IEND: a truncated or corrupted file fails
    except (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise EpisodeError(f"{at}: {path} is a truncated or corrupt PNG ({type(e).__name__}: {e}); "
                           f"{_regenerate_hint()}") from None
    if fmt != "PNG":
        raise EpisodeError(f"{at}: {path} opens as {fmt}, not PNG")
    lo, hi = MIN_SCREENSHOT_PX, MAX_SCREENSHOT_PX
    if not (lo <= w <= hi and lo <= h <= hi):
        raise EpisodeError(f"{at}: {path} is {w} x {h} px; width and height must each be {lo}..{hi} px "
                           f"({lo} px = one 14-px patch x merge 2 of GLM-4.1V's vision encoder)")
    return path


def step_from_json(obj: dict, where: str = "record", base: str | Path | None = None) -> Step:
    """Validate one record and build a Step.

    Args:
        obj: the decoded JSON object.
        where: prefix for error messages, e.g. "eval.jsonl line 3".
        base: folder a relative `screenshot` is resolved against (default: the current directory);
            `load_steps` passes the JSONL file's folder.
    Returns:
        The Step (`screenshot` an absolute, normalized Path, or None).
    Raises:
        EpisodeError: naming `where` and the field at fault.
    """
    spec = _STEP_FIELDS
    if isinstance(obj, dict) and "screenshot" in obj and "screen" not in obj:
        spec = {k: v for k, v in _STEP_FIELDS.items() if k != "screen"}  # the screenshot stands in for the tree
    _check_fields(obj, spec, where, _OPTIONAL_STEP_FIELDS)
    if obj["step"] < 0:
        raise EpisodeError(f"{where}: field 'step' must be >= 0")
    nodes = []
    for i, n in enumerate(obj.get("screen", ())):
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
    shot = _screenshot_path(obj["screenshot"], where, base) if "screenshot" in obj else None
    return Step(obj["episode_id"], obj["step"], obj["goal"], obj["app"], tuple(obj["history"]),
                tuple(nodes), obj["target"], box, shot)


def load_steps(path: str | Path, limit: int | None = None) -> list[Step]:
    """Load and validate a JSONL episode file (one step per line).

    Args:
        path: the .jsonl file.
        limit: keep only the first `limit` steps.
    Returns:
        The steps in file order; a `screenshot` is resolved against the file's folder to an absolute Path.
    Raises:
        EpisodeError: the file is missing, empty or a line is invalid (file, line and field named),
            including a screenshot that is missing, not a PNG, corrupt or of the wrong size.
    """
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"episode file not found: {path} (pass --episodes with a .jsonl file; "
                           f"the default is data/episodes/eval.jsonl)")
    if limit is not None and limit < 1:
        raise EpisodeError(f"limit must be >= 1, got {limit}")
    steps = []
    base = os.path.abspath(path.parent)
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
            steps.append(step_from_json(obj, where, base))
            if limit is not None and len(steps) >= limit:
                break
    if not steps:
        raise EpisodeError(f"{path}: no steps found")
    return steps


def save_steps(steps, path: str | Path) -> None:
    """Write steps as JSONL (atomically: a temporary file renamed into place); screenshots are written
    relative to the file's folder."""
    path = Path(path)
    base = os.path.abspath(path.parent)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for s in steps:
            f.write(json.dumps(s.to_json(base), ensure_ascii=False, separators=(",", ":")) + "\n")
    tmp.replace(path)


_PNG_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def _png_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _PNG_HASHES:
        _PNG_HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _PNG_HASHES[key]


def steps_hash(steps) -> str:
    """sha256 of the steps' canonical JSON (the data key of a measurement on a subset of a file).

    Location independent: a step's screenshot enters as the sha256 of the PNG's bytes, not its path,
    so a copy of the data in another folder has the same key. Steps without a screenshot hash as they
    did before screenshots existed.
    """
    h = hashlib.sha256()
    for s in steps:
        d = s.to_json() if s.screenshot is None else {
            **replace(s, screenshot=None).to_json(), "screenshot": {"sha256": _png_sha256(s.screenshot)}}
        h.update(json.dumps(d, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return h.hexdigest()


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (the episode-file key of the results store)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
