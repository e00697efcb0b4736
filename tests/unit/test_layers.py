"""The layering the engine promises is enforced, not only described.

pyproject.toml holds import-linter contracts (the engine never imports the task library
or torch at module level; the library uses only ginpipe's public API; only the CLI
imports the runner). These tests run them, prove that a broken contract fails, and check
the one rule import-linter cannot express: gin's private state is touched only by
``ginpipe/ginapi.py``.
"""

from __future__ import annotations

import ast
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
    assert "The engine never imports the task library or the inference layer KEPT" in result.stdout


def test_a_broken_contract_fails(tmp_path: Path) -> None:
    """The checker really reads contracts and the code: forbid an import that exists."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "ginpipe"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "config may not use the statement splitter"\ntype = "forbidden"\n'
        'source_modules = ["ginpipe.config"]\nforbidden_modules = ["ginpipe.gintext"]\n'
    )
    result = lint_imports("--config", str(config))
    assert result.returncode != 0
    assert "ginpipe.config -> ginpipe.gintext" in result.stdout


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
        if path.name != "ginapi.py" or path.parent != PACKAGE
        for use in _gin_private_uses(path)
    ]
    assert offenders == []
    assert _gin_private_uses(PACKAGE / "ginapi.py")  # the scan does find real uses


def test_importing_the_cli_imports_neither_torch_nor_gin() -> None:
    probe = (
        "import sys, ginpipe.cli\n"
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'gin', 'sklearn')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
