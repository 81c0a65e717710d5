"""The direction of dependence of docs/design.md section 2: a module imports only its own layer or lower ones."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
LAYERS = {  # docs/design.md section 2, bottom (0) to top
    "task": 0, "model": 1, "registry": 1, "select": 1, "prune": 2, "quant": 2, "cache": 2, "serve": 2, "calib": 2,
    "recipe": 3, "ort": 4, "measure": 5, "store": 6, "sweep": 6, "worker": 6, "export": 6, "plots": 7, "widgets": 7, "cli": 7,
}


def _room(parts: list[str]) -> str | None:
    """The top-level room of a module path inside workbench (e.g. ['measure', 'point'] -> 'measure')."""
    return parts[0] if parts and parts[0] in LAYERS else None


def _imports(path: Path):
    """(imported workbench room, line) for every import in a module, relative ones resolved, lazy ones too."""
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    pkg = list(rel[:-1]) if rel[-1] != "__init__" else list(rel[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [a.name] for a in node.names] if not node.module else [target]
            elif node.module and node.module.startswith("workbench"):
                names = [node.module.split(".")[1:]]
            else:
                continue
            for parts in names:
                yield _room(parts), node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("workbench."):
                    yield _room(a.name.split(".")[1:]), node.lineno


def test_every_import_points_down_or_sideways():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(list(path.relative_to(PACKAGE).with_suffix("").parts))
        if room is None:  # workbench/__init__.py
            continue
        for target, line in _imports(path):
            if target is not None and LAYERS[target] > LAYERS[room]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({room}) imports {target}")
    assert not wrong, "imports against the layers of docs/design.md:\n" + "\n".join(wrong)


def test_no_private_names_cross_rooms():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(list(path.relative_to(PACKAGE).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and any(a.name.startswith("_") and not a.name.startswith("__") for a in node.names):
                target = (node.module or "").split(".")[0] if node.level > 1 else room
                if node.level > 1 and target != room:
                    wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports a private name of {target}")
    assert not wrong, "\n".join(wrong)
