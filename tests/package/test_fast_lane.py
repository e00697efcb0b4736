"""The fast lane (``pytest -m "not slow"``, tests/README.md) still reaches every module of the
package: each module is imported, directly or through the modules it imports, by a test file
that is not wholly slow. Read from the source (imports anywhere in a file, dotted names in
strings as configs name tasks, ``-m ginpipe.X`` for ``X/__main__.py``), so the check itself
costs well under a second."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = TESTS.parent / "ginpipe"
WHOLLY_SLOW = re.compile(r"^pytestmark = .*pytest\.mark\.(slow|heavy)", re.MULTILINE)
DOTTED = re.compile(r"\bginpipe(?:\.\w+)+")
RUN_AS_MAIN = re.compile(r"\"-m\",\s*\"(ginpipe(?:\.\w+)*)\"")  # python -m ginpipe.cli


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def named_in(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules a file imports or names, and the packages above them."""
    text = path.read_text()
    names = set(DOTTED.findall(text))
    names.update(f"{name}.__main__" for name in RUN_AS_MAIN.findall(text))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found & known.keys()


def test_every_module_is_reached_from_a_fast_test_file() -> None:
    known = modules()
    fast = [
        p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts
        and not WHOLLY_SLOW.search(p.read_text())
    ]  # fmt: skip
    reached: set[str] = set()
    todo = set().union(*(named_in(p, known) for p in fast))
    while todo:
        name = todo.pop()
        reached.add(name)
        todo |= named_in(known[name], known) - reached
    assert sorted(known.keys() - reached) == []
