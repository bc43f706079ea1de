"""The import contract of docs/design.md, enforced: every import in harness/
(lazy ones inside functions and TYPE_CHECKING ones included) goes down the
layers cli > commands > runner > report > analysis > {traffic | platforms} >
model, and traffic and platforms never import each other (they meet only in
the model's routing seam, and in the runner)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"

#: layer of each top-level part of the package; higher may import lower, never up
LAYERS = {"cli": 7, "__main__": 7, "commands": 6, "runner": 5, "series": 5, "series_reports": 5, "lanes": 5,
          "fleet": 5, "report": 4, "analysis": 3,
          "spec": 3, "traffic": 2, "platforms": 2, "model": 1, "errors": 0, "__init__": 0}
SIBLINGS = {frozenset({"traffic", "platforms"})}


def part(module: str) -> str:
    """``harness.traffic.engine`` -> ``traffic``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    pkg = ".".join(("harness", *path.relative_to(root).with_suffix("").parts))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("harness")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = pkg.split(".")[: -node.level] if path.name != "__init__.py" else pkg.split(".")[
                    : len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "harness":  # from harness import x: x is the part
                found += [(node.lineno, f"harness.{a.name}") for a in node.names]
            elif mod.startswith("harness."):
                found.append((node.lineno, mod))
    return found


def violations(root: Path = HARNESS) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        me = rel.parts[0].removesuffix(".py")
        for line, mod in imports(path, root):
            other = part(mod)
            if other == me or other not in LAYERS:
                continue
            if frozenset({me, other}) in SIBLINGS or LAYERS[other] > LAYERS[me]:
                out.append(f"harness/{rel}:{line} ({me}) imports {mod} ({other})")
    return out


def test_every_import_goes_down_the_layers():
    assert violations() == []


@pytest.mark.parametrize("source,bad", [
    ("from harness.runner import run_scenario\n", True),
    ("from harness.platforms.local import LocalPlatform\n", True),
    ("def f():\n    import harness.report.render\n", True),
    ("from harness.model.routing import Route\n", False),
], ids=["up-to-runner", "sibling-platforms", "lazy-up", "down-to-model"])
def test_the_check_sees_what_it_must(tmp_path, source, bad):
    """The contract check itself can fail: an upward, sibling or lazy import in traffic/ is caught."""
    fake = tmp_path / "harness"
    (fake / "traffic").mkdir(parents=True)
    (fake / "traffic" / "x.py").write_text(source)
    assert bool(violations(fake)) is bad


#: the most lines a module of harness/ may have (issue #10: small modules, one reason each)
MAX_MODULE_LINES = 400


def oversized(root: Path = HARNESS) -> list[str]:
    return [f"harness/{p.relative_to(root)}: {n} lines" for p in sorted(root.rglob("*.py*"))
            if p.suffix in (".py", ".pyx", ".pxi") and (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]


def test_no_module_is_over_400_lines():
    assert oversized() == []


def test_the_size_check_sees_a_long_module(tmp_path):
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (tmp_path / "short.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    assert oversized(tmp_path) == [f"harness/long.py: {MAX_MODULE_LINES + 1} lines"]
