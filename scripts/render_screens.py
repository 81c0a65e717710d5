"""(Re)draw the screenshot PNGs of an episode file from its accessibility trees and point the records at them.

    python scripts/render_screens.py --episodes data/episodes/eval.jsonl

Every record with a tree is drawn by workbench.task.render into --screens (default: screens/<stem>
beside the JSONL file, e.g. data/episodes/screens/eval/), named <episode_id>-<step>.png, and gets a
`screenshot` field: the PNG's path relative to the JSONL file's folder. Nothing else in a record
changes (key order and values are kept; a record's existing `screenshot` key is updated in place,
a new one is appended). A record without a tree but with a screenshot keeps its screenshot. The
PNGs are written first, each atomically, then the JSONL file (a temporary file renamed into place).
An unchanged PNG is not rewritten, so a second run changes no file.

--check draws every screen and compares it with the file's PNGs (decoded pixels) without writing;
it exits 1 if a screenshot is missing or differs. --prune deletes PNGs in the folder that no record
refers to.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.task.episodes import EpisodeError, step_from_json  # noqa: E402
from workbench.task.render import render_png, screenshot_name, write_png  # noqa: E402


def _records(path: Path):
    """(line number, raw line, decoded object or None for a blank line) of a JSONL file."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path.name} line {lineno}"
            try:
                line = raw.decode("utf-8")
                yield lineno, line, (json.loads(line) if line.strip() else None)
            except UnicodeDecodeError as e:
                raise EpisodeError(f"{where}: not UTF-8 text (byte {e.start})") from None
            except json.JSONDecodeError as e:
                raise EpisodeError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None


def render_file(episodes: str | Path, screens: str | Path | None = None, check: bool = False,
                prune: bool = False) -> dict:
    """Draw the screenshots of `episodes` and rewrite it with `screenshot` fields (see the module doc).

    Returns:
        Counts: {"drawn", "kept" (records without a tree, screenshot kept), "unchanged" (PNG already
        identical), "differ" (with check: missing or different PNGs), "pruned", "bytes" (PNG total)}.
    Raises:
        EpisodeError: a record is invalid (file, line and field named) or two records share a file name.
    """
    from PIL import Image

    path = Path(episodes)
    if not path.is_file():
        raise EpisodeError(f"episode file not found: {path}")
    folder = Path(screens) if screens else path.parent / "screens" / path.stem
    base = os.path.abspath(path.parent)
    lines, owners = [], {}
    counts = {"drawn": 0, "kept": 0, "unchanged": 0, "differ": 0, "pruned": 0, "bytes": 0}
    for lineno, line, obj in _records(path):
        where = f"{path.name} line {lineno}"
        if obj is None:
            lines.append(line if line.endswith("\n") else line + "\n")
            continue
        if isinstance(obj, dict) and "screenshot" in obj and not obj.get("screen"):
            shot = step_from_json(obj, where, base).screenshot   # no tree to draw: keep (and check) its own
            counts["kept"] += 1
            counts["bytes"] += shot.stat().st_size
            lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
            continue
        step = step_from_json({k: v for k, v in obj.items() if k != "screenshot"} if isinstance(obj, dict) else obj,
                              where, base)
        name = screenshot_name(step.episode_id, step.step)
        if name in owners:
            raise EpisodeError(f"{where}: episode {step.episode_id!r} step {step.step} is also on line "
                               f"{owners[name]}; both would be drawn to {folder / name}")
        owners[name] = lineno
        target = folder / name
        if check:
            fresh = Image.open(io.BytesIO(render_png(step))).convert("RGB")
            try:
                same = target.is_file() and Image.open(target).convert("RGB").tobytes() == fresh.tobytes()
            except OSError:
                same = False
            counts["differ"] += not same
            counts["bytes"] += target.stat().st_size if target.is_file() else 0
            continue
        before = target.stat().st_mtime_ns if target.is_file() else None
        write_png(step, target)
        counts["unchanged" if before == target.stat().st_mtime_ns else "drawn"] += 1
        counts["bytes"] += target.stat().st_size
        obj["screenshot"] = os.path.relpath(os.path.abspath(target), base).replace(os.sep, "/")
        lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    if check:
        return counts
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
    if prune and folder.is_dir():
        for png in sorted(folder.glob("*.png")):
            if png.name not in owners:
                png.unlink()
                counts["pruned"] += 1
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", required=True, help="the .jsonl episode file (rewritten in place)")
    p.add_argument("--screens", metavar="DIR", help="folder of the PNGs (default: screens/<stem> beside the file)")
    p.add_argument("--check", action="store_true", help="compare the PNGs with fresh drawings; write nothing")
    p.add_argument("--prune", action="store_true", help="delete PNGs in the folder that no record refers to")
    a = p.parse_args(argv)
    try:
        c = render_file(a.episodes, a.screens, check=a.check, prune=a.prune)
    except EpisodeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.check:
        print(f"{a.episodes}: {c['differ']} screenshot(s) missing or different from a fresh drawing")
        return 1 if c["differ"] else 0
    print(f"{a.episodes}: drew {c['drawn']}, unchanged {c['unchanged']}, kept {c['kept']}, "
          f"pruned {c['pruned']}; PNGs {c['bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
