"""The layering the engine promises is enforced, not only described.

pyproject.toml holds import-linter contracts (the engine never imports the task library
or torch at module level; the library uses only ginpipe's public API; only the CLI
imports the runner). These tests run them, prove that a broken contract fails, and check
the one rule import-linter cannot express: gin's private state is touched only by
``ginpipe/config/ginapi.py``.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ginpipe"
GIN_PRIVATE = {"config", "config_parser", "selector_map"}

pytestmark = pytest.mark.skipif(shutil.which("lint-imports") is None, reason="no import-linter")


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["lint-imports", "--no-cache", *args], cwd=REPO, capture_output=True, text=True
    )


def test_the_contracts_hold() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
    words = " ".join(result.stdout.split())  # lint-imports wraps long contract names
    layers = "cli > deploy > serving | sweep > api > inference > tasks | runs | records"
    assert f"Layers: {layers} > layout > plots > core > config > base KEPT" in words


LAYER_BREAKERS = {
    # a new module in the bottom layer that imports the runner (an upward import)
    "base/upward_probe.py": "from ginpipe.runs import runner\n",
    # a new core module that imports torch at module level
    "core/torch_probe.py": "import torch\n",
    # a task module that reaches into the runner (tasks and runs are independent)
    "tasks/runner_probe.py": "from ginpipe.runs.runner import execute\n",
    # a records module that reaches into the runner (records and runs are independent)
    "records/runner_probe.py": "from ginpipe.runs import rundir\n",
    # a module next to the packages, outside every layer
    "stray_probe.py": "X = 1\n",
}


@pytest.mark.parametrize("relative", sorted(LAYER_BREAKERS))
def test_a_module_in_the_wrong_place_breaks_a_contract(relative: str, tmp_path: Path) -> None:
    """A copy of the package with one throw-away module added: lint-imports must fail.

    The copy keeps the repository untouched for tests running in parallel; it is checked
    with the repository's own contracts.
    """
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "ginpipe", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "ginpipe" / relative).write_text(LAYER_BREAKERS[relative])
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    result = subprocess.run(
        ["lint-imports", "--no-cache"],
        cwd=copy,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(copy)},
    )
    assert result.returncode != 0, result.stdout[-2000:]
    assert "BROKEN" in result.stdout
    probe = "ginpipe." + relative.removesuffix(".py").replace("/", ".")
    assert probe in result.stdout


def test_a_broken_contract_fails(tmp_path: Path) -> None:
    """The checker really reads contracts and the code: forbid an import that exists."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "ginpipe"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "config may not use the statement splitter"\ntype = "forbidden"\n'
        'source_modules = ["ginpipe.config.compose"]\n'
        'forbidden_modules = ["ginpipe.config.gintext"]\n'
    )
    result = lint_imports("--config", str(config))
    assert result.returncode != 0
    assert "ginpipe.config.compose -> ginpipe.config.gintext" in result.stdout


def _gin_private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "gin" and any(a.name in GIN_PRIVATE for a in node.names):
                found.append(f"{path.name}:{node.lineno}: from gin import {node.names[0].name}")
            elif node.module.split(".")[0] == "gin" and node.module != "gin":
                found.append(f"{path.name}:{node.lineno}: from {node.module} import ...")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "gin"
            and node.attr in GIN_PRIVATE
        ):
            found.append(f"{path.name}:{node.lineno}: gin.{node.attr}")
    return found


def test_only_ginapi_touches_gin_private_state() -> None:
    offenders = [
        use
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "config" / "ginapi.py"
        for use in _gin_private_uses(path)
    ]
    assert offenders == []
    assert _gin_private_uses(PACKAGE / "config" / "ginapi.py")  # the scan does find real uses


def test_importing_the_cli_imports_neither_torch_nor_gin() -> None:
    probe = (
        "import sys, ginpipe.cli\n"
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'gin', 'sklearn')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_through_others() -> None:
    """No import cycles between ginpipe's modules (the layers forbid them between folders)."""
    grimp = pytest.importorskip("grimp")
    built = grimp.build_graph("ginpipe")
    graph = {
        module: {
            imported
            for imported in built.find_modules_directly_imported_by(module)
            if imported.startswith("ginpipe.")
        }
        for module in built.modules
        if module.startswith("ginpipe.")
    }
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
