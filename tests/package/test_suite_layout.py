"""The test suite's own layout (tests/README.md): pytest imports test files by basename
(no ``__init__.py``, the default ``prepend`` import mode), so two files of one name would
collide."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
    names.pop("conftest.py", None)
    assert [name for name, count in names.items() if count > 1] == []


def test_no_test_folder_is_a_package() -> None:
    assert sorted(p.relative_to(TESTS) for p in TESTS.rglob("__init__.py")) == []
