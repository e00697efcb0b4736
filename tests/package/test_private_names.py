"""No module reaches into another module's private names: a module's underscore names are
its own, so what other modules need is public (``ginpipe/core/pipeline.py``'s step interface
is what executors drive, not its internals).

Checked on the source: ``from ginpipe.x import _name``, and ``something._name`` where
``_name`` is defined by another ginpipe module and not by the one using it (``self._x`` and
``cls._x`` are a class's own). Third-party private names (``os._exit``) are not ginpipe's
and are left alone; gin's private state is reached in one module only
(``ginpipe/config/ginapi.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ginpipe

PACKAGE = Path(ginpipe.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_private_names(tree: ast.AST) -> set[str]:
    """The underscore names a module defines: functions, classes, methods, assignments."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {name for name in names if _private(name)}


def private_uses(package: Path) -> list[str]:
    """``file:line: what`` for each use of another module's private name."""
    trees = {path: ast.parse(path.read_text(), str(path)) for path in package.rglob("*.py")}
    own = {path: _defined_private_names(tree) for path, tree in trees.items()}
    anywhere = set().union(*own.values())
    found = []
    for path, tree in sorted(trees.items()):
        where = path.relative_to(package.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ginpipe"):
                found += [
                    f"{where}:{node.lineno}: from {node.module} import {alias.name}"
                    for alias in node.names
                    if _private(alias.name)
                ]
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in anywhere and node.attr not in own[path]:
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    assert private_uses(PACKAGE) == []


def test_the_scan_finds_a_private_name_used_across_modules(tmp_path: Path) -> None:
    package = tmp_path / "ginpipe"
    package.mkdir()
    a = "def _helper():\n    return 1\n\nclass P:\n    def _load(self):\n        return 2\n"
    b = "from ginpipe.a import _helper\nfrom ginpipe import a\n\ndef f(p):\n"
    (package / "a.py").write_text(a)
    (package / "b.py").write_text(b + "    return p._load(), a._helper()\n")
    assert private_uses(package) == [
        "ginpipe/b.py:1: from ginpipe.a import _helper",
        "ginpipe/b.py:5: p._load",
        "ginpipe/b.py:5: a._helper",
    ]
