"""The search space: comma lists (grid axes), distributions in sweep files, and the refusals
that must come before any trial."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ginpipe.config.gintext import split_top_level
from ginpipe.sweep.space import (
    Param,
    SpaceError,
    build_space,
    check_unique,
    comma_list_axis,
    parse_distribution,
    parse_mods,
    read_sweep_file,
)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("1e-4,1e-3,1e-2", ["1e-4", "1e-3", "1e-2"]),
        (" 1 , 2 ", ["1", "2"]),
        ("[1, 2]", ["[1, 2]"]),
        ("[1, 2],[3]", ["[1, 2]", "[3]"]),
        ("'a,b'", ["'a,b'"]),
        ("'a,b','c'", ["'a,b'", "'c'"]),
        ('"x\\",y"', ['"x\\",y"']),
        ("@f(1, 2), @g()", ["@f(1, 2)", "@g()"]),
        ("{'a': 1, 'b': 2}", ["{'a': 1, 'b': 2}"]),
        ("0.01", ["0.01"]),
        ("[1, 2", ["[1, 2"]),  # unbalanced: left whole for gin to report
        ("'open, quote", ["'open, quote"]),
    ],
)
def test_commas_split_only_at_the_top_level(text: str, parts: list[str]) -> None:
    assert split_top_level(text) == parts


ATOMS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(alphabet="ab, []()", max_size=6).map(lambda s: repr(s)),
    st.lists(st.integers(0, 9), max_size=4).map(str),
    st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda t: f"@f({t[0]}, {t[1]})"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ATOMS, min_size=1, max_size=6))
def test_a_joined_list_of_values_splits_back_into_them(values: list[str]) -> None:
    assert split_top_level(",".join(values)) == values


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet="a1 ,[](){}'\"\\", max_size=30)))
def test_any_text_splits_into_pieces_that_are_one_value_each(text: str) -> None:
    parts = split_top_level(text)
    assert 1 <= len(parts) <= text.count(",") + 1
    assert all(part == part.strip() for part in parts)
    if len(parts) > 1:
        assert all(split_top_level(part) == [part] for part in parts)


def test_comma_lists_are_axes_and_other_mods_fixed() -> None:
    fixed, axes = parse_mods(
        ["LR=1e-4,1e-3", "Trainer.max_epochs=2", "ResNet.blocks=[1, 2]", "X='a,b'", "W=1, 2"]
    )
    assert fixed == ["Trainer.max_epochs=2", "ResNet.blocks=[1, 2]", "X='a,b'"]
    assert [(a.key, a.values) for a in axes] == [("LR", ("1e-4", "1e-3")), ("W", ("1", "2"))]
    assert comma_list_axis("LR=1,2") and not comma_list_axis("LR=[1,2]")


@pytest.mark.parametrize(
    ("mod", "message"),
    [
        ("LR=1e-3,,1e-2", "empty value"),
        ("LR=1e-3,", "empty value"),
        ("LR=1,1", "listed twice"),
        ("run.tasks+=[@a],[@b]", "cannot be appended"),
    ],
)
def test_malformed_axes_are_refused(mod: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_mods([mod])


def test_distributions_parse_with_or_without_the_at() -> None:
    log = parse_distribution("LR", "@loguniform(1e-4, 1e-1)", "f:1")
    assert (log.kind, log.low, log.high) == ("loguniform", 1e-4, 1e-1)
    assert parse_distribution("D", "uniform(0, 0.5)", "f:2").kind == "uniform"
    width = parse_distribution("W", "@int(16, 64)", "f:3")
    assert (width.kind, width.first()) == ("int", "16")
    choice = parse_distribution("A", "@choice(['relu', 'gelu', @GELU])", "f:4")
    assert choice.values == ("'relu'", "'gelu'", "@GELU")
    assert parse_distribution("LR", "0.01", "f:5") is None
    assert parse_distribution("M", "@ResNet()", "f:6") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("@loguniform(1e-4)", "two numbers"),
        ("@loguniform(0, 1)", "low > 0"),
        ("@uniform(1, 0.5)", "low < high"),
        ("@uniform('a', 1)", "two numbers"),
        ("@int(1.5, 4)", "two integers"),
        ("@choice(16, 32)", "needs a list"),
        ("@choice([16])", "at least two"),
        ("@choice([1, 1])", "listed twice"),
    ],
)
def test_malformed_distributions_are_refused(value: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_distribution("K", value, "sweep.gin:3")


def test_a_sweep_file_keeps_its_ordinary_lines(tmp_path: Path) -> None:
    (tmp_path / "part.gin").write_text("add_up.scale = 2.0\n")
    path = tmp_path / "s.gin"
    path.write_text(
        "include 'part.gin'\nLR = @loguniform(1e-4, 1e-1)\nW = @choice([\n  1,\n  2])\nX = 3\n"
    )
    found = read_sweep_file(path)
    assert [p.key for p in found.params] == ["LR", "W"]
    lines = found.text.splitlines()
    assert lines[0] == f"include '{(tmp_path / 'part.gin').resolve()}'"
    assert all(line.startswith("# swept: ") for line in lines[1:5])
    assert lines[5] == "X = 3"


def test_a_key_swept_twice_is_refused(tmp_path: Path) -> None:
    params = [Param("LR", "grid", "--mod 'LR=1,2'", ("1", "2")), Param("LR", "uniform", "f:1")]
    with pytest.raises(SpaceError, match="LR is swept twice"):
        check_unique(params)
    sweep_file = tmp_path / "s.gin"
    sweep_file.write_text("LR = @uniform(0.1, 0.2)\n")
    with pytest.raises(SpaceError, match="swept twice"):
        build_space([str(sweep_file)], ["LR=1,2"], copy_dir=None)


def test_the_grid_is_the_product_of_its_axes(tmp_path: Path) -> None:
    base = tmp_path / "b.gin"
    base.write_text("X = 1\n")
    space = build_space([str(base)], ["A=1,2,3", "B='x','y'", "C=5"], copy_dir=None)
    assert space.is_grid and space.grid_size() == 6
    assert space.first_mods() == ["C=5", "A=1", "B='x'"]
    with pytest.raises(SpaceError, match="nothing to sweep"):
        build_space([str(base)], ["C=5"], copy_dir=None)
