"""Splitting gin text into statements: kinds, line numbers, and errors that point at a line."""

from __future__ import annotations

import gin
import pytest

from ginpipe.config.gintext import GinSyntaxError, Statement, pad_to_line, split_statements

REALISTIC = '''# base
import ginpipe.tasks.load
include 'models/resnet.gin'
LR = 0.01
run.tasks = [
    @seed,          # first
    @load_digits,
]
run.tasks += [@evaluate]
fit.optimizer = @torch.optim.AdamW
torch.optim.AdamW.lr = %LR
Trainer.max_epochs = 3
x.s = "a += b = c"
x.d = {'k=1': [1, 2,
               3]}
x.t = """multi
line = not a split"""
scope/Trainer.callbacks += [@EarlyStopping(), @ModelCheckpoint()]
'''


def _error(text: str) -> GinSyntaxError:
    with pytest.raises(GinSyntaxError) as info:
        split_statements(text, "conf.gin")
    return info.value


def test_realistic_file_kinds_lines_and_values() -> None:
    got = [(s.kind, s.line, s.end_line) for s in split_statements(REALISTIC, "base.gin")]
    assert got == [
        ("import", 2, 2),
        ("include", 3, 3),
        ("other", 4, 4),
        ("other", 5, 8),
        ("append", 9, 9),
        ("other", 10, 10),
        ("other", 11, 11),
        ("other", 12, 12),
        ("other", 13, 13),
        ("other", 14, 15),
        ("other", 16, 17),
        ("append", 18, 18),
    ]


def test_realistic_file_texts_targets_and_values() -> None:
    stmts = split_statements(REALISTIC, "base.gin")
    assert stmts[1].value == "models/resnet.gin"
    assert stmts[3].text == "run.tasks = [\n    @seed,          # first\n    @load_digits,\n]"
    assert (stmts[4].target, stmts[4].value) == ("run.tasks", "[@evaluate]")
    assert stmts[8].text == 'x.s = "a += b = c"'
    assert stmts[9].text == "x.d = {'k=1': [1, 2,\n               3]}"
    assert stmts[10].text == 'x.t = """multi\nline = not a split"""'
    assert stmts[11].target == "scope/Trainer.callbacks"
    assert stmts[11].value == "[@EarlyStopping(), @ModelCheckpoint()]"


def test_text_is_the_source_lines_of_each_statement() -> None:
    lines = REALISTIC.splitlines()
    for stmt in split_statements(REALISTIC):
        assert stmt.text == "\n".join(lines[stmt.line - 1 : stmt.end_line]).rstrip()


def test_equals_inside_strings_and_brackets_never_split() -> None:
    text = "x.s = 'a+=b=c'\nx.d = {'k': 'a=b'}\nx.l = [1,\n 2,\n 3]\n"
    stmts = split_statements(text)
    assert [(s.kind, s.line, s.end_line) for s in stmts] == [
        ("other", 1, 1),
        ("other", 2, 2),
        ("other", 3, 5),
    ]


def test_comments_and_blank_lines_are_dropped_but_kept_inside_brackets() -> None:
    text = "# header\n\n   # indented comment\na.b = [  # why\n  1,\n]  # after\n\n"
    (stmt,) = split_statements(text)
    assert stmt.text == "a.b = [  # why\n  1,\n]"
    assert (stmt.line, stmt.end_line) == (4, 6)


def test_empty_and_comment_only_files_have_no_statements() -> None:
    assert split_statements("") == []
    assert split_statements("# only\n\n  # comments\n") == []


def test_missing_final_newline() -> None:
    (stmt,) = split_statements("a.b += [1]")
    assert (stmt.kind, stmt.target, stmt.value) == ("append", "a.b", "[1]")


def test_append_spanning_lines_keeps_value_text() -> None:
    text = "fit.callbacks += [\n    @EarlyStopping(),  # stop early\n    @Ckpt(),\n]\n"
    (stmt,) = split_statements(text)
    assert stmt.kind == "append"
    assert (stmt.line, stmt.end_line) == (1, 4)
    assert stmt.value == "[\n    @EarlyStopping(),  # stop early\n    @Ckpt(),\n]"


def test_append_with_backslash_continuation_and_trailing_comment() -> None:
    (stmt,) = split_statements("a.b += \\\n  [1]  # note\n")
    assert (stmt.value, stmt.line, stmt.end_line) == ("[1]", 1, 2)
    assert stmt.text == "a.b += \\\n  [1]"


def test_appending_a_string_containing_plus_equals() -> None:
    (stmt,) = split_statements("a.names += ['x += y']\n")
    assert (stmt.target, stmt.value) == ("a.names", "['x += y']")


def test_plus_equals_after_equals_is_not_an_append() -> None:
    (stmt,) = split_statements("a.b = 'x' += 1\n")
    assert stmt.kind == "other"


def test_imports() -> None:
    text = "import a.b.c\nimport a.b as c\nfrom __gin__ import dynamic_registration\n"
    assert [s.kind for s in split_statements(text)] == ["import"] * 3


def test_include_paths_are_unescaped() -> None:
    text = "include \"a/b.gin\"\ninclude 'it\\'s.gin'\ninclude 'x' '.gin'\n"
    assert [s.value for s in split_statements(text)] == ["a/b.gin", "it's.gin", "x.gin"]
    assert all(s.kind == "include" for s in split_statements(text))


def test_binding_named_include_is_not_an_include() -> None:
    (stmt,) = split_statements("include = 3\n")
    assert stmt.kind == "other"


@pytest.mark.parametrize("text", ["include\n", "include models.gin\n", "include b'x.gin'\n"])
def test_include_without_a_string_is_an_error(text: str) -> None:
    assert _error("a.b = 1\n" + text).line == 2


def test_gin_selectors_and_references_pass_through() -> None:
    text = "a.b.c.param = @scope/foo()\nMACRO = %other\nx/y/z.w = @Model\n"
    assert [(s.kind, s.text) for s in split_statements(text)] == [
        ("other", "a.b.c.param = @scope/foo()"),
        ("other", "MACRO = %other"),
        ("other", "x/y/z.w = @Model"),
    ]


def test_indented_statements_do_not_crash_and_start_at_their_first_token() -> None:
    text = "    x.a = 1\n  x.b = [\n1]\n\tx.c = 3\nx.d = 4\n"
    stmts = split_statements(text)
    assert [(s.text, s.line) for s in stmts] == [
        ("x.a = 1", 1),
        ("x.b = [\n1]", 2),
        ("x.c = 3", 4),
        ("x.d = 4", 5),
    ]


def test_binding_block_is_one_statement() -> None:
    text = "Model:\n    depth = 3  # deep\n# aside\n    width = [1,\n  2]\nafter.x = 1\n"
    block, after = split_statements(text)
    assert block.kind == "other"
    assert (block.line, block.end_line) == (1, 5)
    assert block.text == "Model:\n    depth = 3  # deep\n# aside\n    width = [1,\n  2]"
    assert (after.text, after.line) == ("after.x = 1", 6)


def test_append_inside_binding_block_is_an_error() -> None:
    err = _error("Model:\n  depth = 3\n  layers += [1]\n")
    assert err.line == 3


def test_inconsistent_block_indentation_is_an_error() -> None:
    assert _error("Model:\n    a = 1\n  b = 2\n").line == 3


def test_unterminated_list_reports_its_opening_line() -> None:
    assert _error(REALISTIC.replace("    @load_digits,\n]\n", "    @load_digits,\n")).line == 5
    err = _error("LR = 1\nrun.tasks = [\n    @seed,\n    @load_digits,\nx.y = (1, 2)\n")
    assert (err.line, err.filename) == (2, "conf.gin")
    assert "line 2" in str(err)


def test_unterminated_list_in_realistic_file_at_line_4() -> None:
    text = "# base\nimport a\nLR = 1\nrun.tasks = [\n    @seed,\n    @load,\n"
    err = _error(text)
    assert err.line == 4
    assert str(err).startswith('File "conf.gin", line 4: ')


def test_unterminated_string_reports_its_line() -> None:
    err = _error("a.b = 1\nx.s = 'abc\nc.d = 2\n")
    assert (err.line, err.message) == (2, "unterminated string")
    assert str(err) == 'File "conf.gin", line 2: unterminated string'


def test_unterminated_string_inside_brackets() -> None:
    assert _error("a.b = 1\nx.l = [\n  'a',\n  'b,\n]\n").line == 4


def test_unterminated_triple_quoted_string_reports_its_start() -> None:
    err = _error('a.b = 1\nx.t = """abc\n\nmore\n')
    assert err.line == 2
    assert "unterminated" in err.message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a.b = 1\nx.l = [1, 2]]\n", 2),
        ("a.b = 1\nx.l = ]\n", 2),
        ("x.l = [1,\n (2, 3]\n", 2),
    ],
)
def test_unbalanced_closing_bracket(text: str, line: int) -> None:
    assert _error(text).line == line


def test_backslash_at_end_of_file() -> None:
    assert _error("a.b = 1\nx.y = \\\n").line == 2


@pytest.mark.parametrize(
    ("text", "line"),
    [("+= [1]\n", 1), ("a.b = 1\na.c +=\n", 2), ("a b += [1]\n", 1), ("[x] += [1]\n", 1)],
)
def test_append_needs_target_and_value(text: str, line: int) -> None:
    assert _error(text).line == line


def test_error_is_a_value_error_with_fields() -> None:
    err = _error("x = (\n")
    assert isinstance(err, ValueError)
    assert (err.filename, err.line) == ("conf.gin", 1)
    assert err.message in str(err)


def test_pad_to_line() -> None:
    assert pad_to_line("a = 1", 1) == "a = 1"
    assert pad_to_line("a = 1", 4) == "\n\n\na = 1"


def test_statement_is_frozen() -> None:
    stmt = Statement(kind="other", text="a = 1", line=1, end_line=1)
    with pytest.raises(AttributeError):
        stmt.line = 2  # type: ignore[misc]


def test_gin_reports_original_line_numbers_for_padded_statements() -> None:
    text = "# header\nLR = 0.1\n\nx.l = [\n  1,\n]\nNoSuchConfigurable.param = [1,\n  2]\n"
    stmts = split_statements(text, "conf.gin")
    bad = stmts[-1]
    assert bad.line == 7
    try:
        with pytest.raises(ValueError, match=r"line 7\b"):
            gin.parse_config(pad_to_line(bad.text, bad.line))
    finally:
        gin.clear_config()


def test_gin_parses_a_run_of_statements_joined_with_padding() -> None:
    text = "A = 1\n\n  # c\nB = [1,\n  2]\nx.y += [3]\nC = 'z=1'\nNoSuch.p = 1\n"
    stmts = [s for s in split_statements(text) if s.kind == "other"]
    source = ""
    for stmt in stmts:
        source += pad_to_line(stmt.text, stmt.line - source.count("\n")) + "\n"
    try:
        with pytest.raises(ValueError, match=r"line 8\b"):
            gin.parse_config(source)
        assert gin.query_parameter("%B") == [1, 2]
        assert gin.query_parameter("%C") == "z=1"
    finally:
        gin.clear_config()
