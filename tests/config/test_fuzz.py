"""Property-based fuzzing of the config reader: any text gives statements or one
``GinSyntaxError``; any file or ``--mod`` gives a config or one ``ConfigError`` -- never
another exception, never a hang."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ginpipe.base.errors import ConfigError
from ginpipe.config.compose import compose, compose_text
from ginpipe.config.gintext import GinSyntaxError, split_statements

# Text built from the pieces gin syntax is made of, so the fuzzer reaches deep states.
PIECES = st.sampled_from(
    [
        "a", "b.c", "make_numbers", "add_up.scale", "run.tasks", "LR", "%LR", "@x", "@make_numbers",
        "()", "=", "+=", " ", "\n", "\t", "[", "]", "(", ")", "{", "}", ",", ":", "'", '"', '"""',
        "#", "1", "0.5", "-3", "True", "None", "include", "import", "toytasks", "/", ".", "\\",
        "'a=b'", "scope/", "gin.REQUIRED", "é", "\x00",
    ]
)  # fmt: skip
GIN_LIKE = st.lists(PIECES, max_size=40).map("".join)
ANY_TEXT = st.one_of(GIN_LIKE, st.text(max_size=200))
FUZZ = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(ANY_TEXT)
def test_splitting_any_text_gives_statements_or_a_syntax_error(text: str) -> None:
    try:
        statements = split_statements(text, "fuzz.gin")
    except GinSyntaxError as e:
        assert e.line >= 1
        return
    for stmt in statements:
        assert 1 <= stmt.line <= stmt.end_line


@FUZZ
@given(ANY_TEXT)
def test_composing_any_file_gives_a_config_or_one_config_error(toy_project, text: str) -> None:
    try:
        compose_text("import toytasks\n" + text, str(toy_project.path / "fuzz.gin"))
    except ConfigError as e:
        assert str(e).strip() and "\n" not in str(e).strip()


@FUZZ
@given(ANY_TEXT)
def test_any_mod_gives_a_config_or_one_config_error(toy_project, mod: str) -> None:
    try:
        compose(["base.gin"], [mod])
    except ConfigError as e:
        assert str(e).strip() and "\n" not in str(e).strip()


@pytest.mark.parametrize(
    "mod", ["LR=%LR", "a.b=[", "add_up.scale=", "=3", "add_up.scale+=1", "run.tasks+=[@nope]"]
)
def test_known_bad_mods_are_one_line(toy_project, mod: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose(["base.gin"], [mod])
    assert "\n" not in str(info.value).strip()


# Whole simple lines, which the splitter takes without its tokenizer, mixed with the rest.
LINES = st.sampled_from(
    [
        "a = 1\n", "b.c = 'x'\n", "s/d.e = %LR\n", "f = @g()\n", "LR = 0.5  # note\n", "x = [\n",
        "  1,\n", "]\n", "y = '''\n", "'''\n", "z = (1,\n", "Block:\n", "  p = 2\n", "q = 3 \\\n",
        "# c\n", "\n", "k += [1]\n", "n = 'a' 'b'\n", "bad = 'x\n", "  w = 1\n", ")\n",
    ]
)  # fmt: skip
LINE_TEXT = st.lists(st.one_of(LINES, PIECES), max_size=30).map("".join)


def _outcome(text: str) -> object:
    try:
        return split_statements(text, "fuzz.gin")
    except GinSyntaxError as e:
        return ("error", e.line, e.message)


@FUZZ
@given(st.one_of(LINE_TEXT, ANY_TEXT))
def test_the_simple_line_shortcut_never_changes_the_result(text: str) -> None:
    import re

    from ginpipe.config import gintext

    fast = _outcome(text)
    shortcut = gintext._SIMPLE_LINE
    gintext._SIMPLE_LINE = re.compile(r"(?!)")  # every line through the tokenizer
    try:
        slow = _outcome(text)
    finally:
        gintext._SIMPLE_LINE = shortcut
    assert fast == slow
