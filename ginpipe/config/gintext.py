"""Split gin config text into top-level statements, keeping their original line numbers.

gin has no list append, so ginpipe adds ``key += value`` on top of it. Finding the ``+=``
(and ``include``) statements by splitting text on ``=`` breaks on strings and multi-line
values, so this module walks Python ``tokenize`` tokens instead: a string is one token,
``+=`` is one operator, and a statement ends at a NEWLINE outside brackets.

Every statement keeps its source text and first line, so a caller can hand ordinary
statements to ``gin.parse_config`` one by one and shift the line numbers of gin's errors
by the statement's first line (no padding: that made parsing quadratic in the file size).
Each statement also lists the names it uses -- its binding key and its ``@references`` --
so a caller can import what a config names before gin looks the names up.

Most lines of a long config are one-line bindings of a number, a string, a macro or a
reference (``LR = 0.01``). Such a line is matched whole by a regular expression instead of
being tokenized, and marked ``simple``: gin accepts its syntax, so the composer neither
checks it separately nor needs gin's parser to bind a literal. Tokenizing and gin's parser
cost tens of microseconds a statement; a 20,000-line config is composed in about a second.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import cast

__all__ = ["GinSyntaxError", "Statement", "pad_to_line", "split_statements"]

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")", "]", "}"}
_LAYOUT = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}
# Same shape gin accepts for a binding key: optional scopes, then a dotted name.
_SCOPE_RE = re.compile(r"^[A-Za-z_]\w*$")
_SELECTOR_RE = re.compile(r"^([A-Za-z_]\w*\.)*[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a gin file, with where it sits in that file."""

    kind: str  # "include" | "import" | "append" | "other"
    text: str  # exact source text, first token to last token (comments inside kept)
    line: int  # 1-based first line
    end_line: int  # 1-based last line
    target: str = ""  # "append" and "other" bindings: the binding key left of "+=" / "="
    value: str = ""  # "append": source text right of "+="; "include": the file name
    references: tuple[str, ...] = ()  # selectors after "@", scopes removed, in order
    # A one-line binding of a plain literal, macro or reference, whose syntax gin accepts
    # (the splitter matched it whole): it needs no separate syntax check.
    simple: bool = field(default=False, compare=False)

    @property
    def configurable(self) -> str:
        """The selector the binding key configures (``Trainer`` in ``s/Trainer.x = 1``);
        empty for macros and non-bindings."""
        selector = self.target.rpartition("/")[2]
        return selector.rpartition(".")[0]


class GinSyntaxError(ValueError):
    """A gin file cannot even be split into statements; names the file and line."""

    def __init__(self, filename: str, line: int, message: str) -> None:
        super().__init__(f'File "{filename}", line {line}: {message}')
        self.filename = filename
        self.line = line
        self.message = message


# A line that is one whole binding of a simple value, at column 0 (so never inside a block
# body): ``key = 0.01``, ``key = 'text'``, ``key = %MACRO``, ``key = @name()``, with an
# optional comment. Such lines skip the tokenizer; everything else goes through it.
_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_SCOPED = rf"(?:[A-Za-z_]\w*/)*{_NAME}"
_SIMPLE_VALUE = (
    r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
    r"|'[^'\\\n]*'|\"[^\"\\\n]*\""
    r"|True|False|None"
    rf"|%{_SCOPED}|@{_SCOPED}(?:\(\))?"
)
_SIMPLE_LINE = re.compile(
    rf"(?P<key>{_SCOPED})[ \t]*=[ \t]*(?P<value>{_SIMPLE_VALUE})(?![\w.])[ \t]*(?:#[^\n]*)?\n?\Z",
    re.ASCII,
)
_QUIET_LINE = re.compile(r"[ \t\f]*(?:#[^\n]*)?\n?\Z")


class _Unfinished(Exception):
    """A run of lines ends inside a statement; it must be tokenized with what follows."""


@dataclass(frozen=True)
class _Tok:
    """A significant token with positions mapped back to the original text."""

    type: int
    string: str
    start: int  # offset of its first character in the original text
    end: int  # offset just past its last character
    line: int
    end_line: int
    col: int  # column in the original line
    depth: int  # open brackets around it


def pad_to_line(text: str, line: int) -> str:
    """Prefix blank lines so a parser counting from 1 reports ``text`` as starting at ``line``."""
    return "\n" * max(line - 1, 0) + text


def split_statements(text: str, filename: str = "<string>") -> list[Statement]:
    """Split gin source into statements; raise ``GinSyntaxError`` where splitting fails.

    Only the shape is checked (strings, brackets, the ``+=`` and ``include`` forms ginpipe
    handles itself); everything else is left for gin to judge.
    """
    logical = _logical_lines(text, filename)
    statements: list[Statement] = []
    i = 0
    while i < len(logical):
        toks = logical[i]
        if isinstance(toks, Statement):
            statements.append(toks)
            i += 1
            continue
        if _is_block_header(toks):
            end = _block_end(logical, i, filename)
            # lines, not statements: _block_end stops before the first Statement
            body = [tok for group in logical[i:end] for tok in cast("list[_Tok]", group)]
            statements.append(_make(text, body, "other"))
            i = end
            continue
        statements.append(_classify(text, toks, filename))
        i += 1
    return statements


def _logical_lines(source: str, filename: str) -> list[list[_Tok] | Statement]:
    """Tokenize ``source`` into lines that end at a NEWLINE outside brackets.

    A simple binding alone on its line (``_SIMPLE_LINE``) becomes its statement at once;
    the runs of other lines between them are tokenized. A run that ends inside a statement
    (a simple-looking line inside a multi-line value) is tokenized again with the rest of
    the file, so the result never depends on the shortcut.

    Leading whitespace is removed from every line before tokenizing, so tokenize never
    reasons about indentation (gin files are not Python and may indent freely); positions
    are mapped back to the original text. Block layout is recovered later from the columns.
    """
    lines = io.StringIO(source).readlines()  # splits on "\n" only, like gin's reader
    starts: list[int] = []
    offset = 0
    for raw in lines:
        starts.append(offset)
        offset += len(raw)
    simple = [_SIMPLE_LINE.match(raw) for raw in lines]
    result: list[list[_Tok] | Statement] = []
    count = len(lines)
    i = 0
    while i < count:
        match = simple[i]
        if match is not None:
            result.append(_simple_statement(match, i + 1))
            i += 1
            continue
        j = i + 1
        while j < count and simple[j] is None:
            j += 1
        if all(_QUIET_LINE.match(lines[k]) for k in range(i, j)):
            i = j  # blank lines and comments only
            continue
        try:
            result += _tokenize_run(source, lines, starts, i, j, filename, last=j == count)
        except _Unfinished:
            j = count
            result += _tokenize_run(source, lines, starts, i, j, filename, last=True)
        i = j
    return result


def _simple_statement(match: re.Match[str], line: int) -> Statement:
    value = match.group("value")
    references: tuple[str, ...] = ()
    if value.startswith("@"):
        references = (value[1:].removesuffix("()").rpartition("/")[2],)
    return Statement(
        kind="other",
        text=match.string[: match.end("value")],
        line=line,
        end_line=line,
        target=match.group("key"),
        references=references,
        simple=True,
    )


def _tokenize_run(
    source: str,
    lines: list[str],
    starts: list[int],
    first: int,
    stop: int,
    filename: str,
    *,
    last: bool,
) -> list[list[_Tok]]:
    """Logical lines of ``lines[first:stop]``; raises ``_Unfinished`` (unless ``last``) when
    the run stops inside a statement or fails in a way the following lines could change."""
    indents: list[int] = []
    pieces: list[str] = []
    for raw in lines[first:stop]:
        body = raw.lstrip(" \t\f")
        indents.append(len(raw) - len(body))
        pieces.append(body)
    stripped = "".join(pieces)
    rows = stop - first

    def where(row: int, col: int) -> tuple[int, int]:
        """Map a (row, col) of the stripped run to (offset, col) in the original."""
        if row > rows:
            return (starts[stop] if stop < len(starts) else len(source)), 0
        col += indents[row - 1]
        return starts[first + row - 1] + col, col

    result: list[list[_Tok]] = []
    current: list[_Tok] = []
    brackets: list[tuple[str, int]] = []  # (opening char, line), innermost last
    try:
        for tok in tokenize.generate_tokens(io.StringIO(stripped).readline):
            if tok.type == tokenize.NEWLINE:
                if current:
                    result.append(current)
                    current = []
                continue
            if tok.type in _LAYOUT:
                continue
            row = tok.start[0] + first
            if tok.type == tokenize.ERRORTOKEN:
                if not tok.string.strip():
                    continue  # tokenize's stray whitespace before an odd character
                if tok.string[0] in "'\"":
                    raise GinSyntaxError(filename, row, "unterminated string")
            depth = len(brackets)
            if tok.type == tokenize.OP and tok.string in _OPENERS:
                brackets.append((tok.string, row))
            elif tok.type == tokenize.OP and tok.string in _CLOSERS:
                if not brackets:
                    raise GinSyntaxError(filename, row, f"unmatched '{tok.string}'")
                opener, opened_at = brackets.pop()
                if _OPENERS[opener] != tok.string:
                    raise GinSyntaxError(
                        filename,
                        row,
                        f"'{tok.string}' does not match '{opener}' opened on line {opened_at}",
                    )
                depth = len(brackets)
            start, col = where(*tok.start)
            end, _ = where(*tok.end)
            current.append(
                _Tok(tok.type, tok.string, start, end, row, tok.end[0] + first, col, depth)
            )
    except GinSyntaxError:
        if not last:
            raise _Unfinished from None
        raise
    except tokenize.TokenError as err:  # 3.12+ also reports its C tokenizer's errors here
        if not last:
            raise _Unfinished from None
        raise _tokenize_error(err, brackets, current, filename, first) from None
    except SyntaxError as err:  # IndentationError and friends, depending on the version
        if not last:
            raise _Unfinished from None
        line = (err.lineno + first) if err.lineno else (current[0].line if current else 1)
        raise GinSyntaxError(filename, line, err.msg or "invalid syntax") from None
    if current:
        result.append(current)
    return result


def _tokenize_error(
    err: tokenize.TokenError,
    brackets: list[tuple[str, int]],
    current: list[_Tok],
    filename: str,
    first: int = 0,
) -> GinSyntaxError:
    """Turn a tokenize failure into an error at the line where the problem starts
    (``first``: lines of the file before the tokenized run)."""
    message = str(err.args[0]) if err.args else "invalid syntax"
    pos = err.args[1] if len(err.args) > 1 else None
    line = pos[0] + first if isinstance(pos, tuple) and pos and pos[0] else 1 + first
    lowered = message.lower()
    if "string" in lowered:
        triple = "multi-line" in lowered or "triple" in lowered
        return GinSyntaxError(
            filename, line, "unterminated triple-quoted string" if triple else "unterminated string"
        )
    if brackets and ("eof" in lowered or "never closed" in lowered):
        opener, opened_at = brackets[0]
        return GinSyntaxError(filename, opened_at, f"'{opener}' is never closed")
    if "eof" in lowered:
        start = current[0].line if current else line
        return GinSyntaxError(filename, start, "unexpected end of file inside a statement")
    return GinSyntaxError(filename, line, message)


def _first_operator(toks: list[_Tok]) -> _Tok | None:
    """The first ``=``, ``+=`` or ``:`` outside brackets: it decides what the statement is."""
    for tok in toks:
        if tok.type == tokenize.OP and tok.depth == 0 and tok.string in ("=", "+=", ":"):
            return tok
    return None


def _is_block_header(toks: list[_Tok]) -> bool:
    """``Name:`` alone on a line opens an indented gin binding block."""
    op = _first_operator(toks)
    return op is not None and op.string == ":" and op is toks[-1]


def _block_end(logical: list[list[_Tok] | Statement], header: int, filename: str) -> int:
    """Index just past the last line indented under the block header at ``header``
    (a simple line starts at column 0: it is never in a block)."""
    outer = cast("list[_Tok]", logical[header])[0].col  # the caller checked it is a line
    end = header + 1
    body_col: int | None = None
    while end < len(logical):
        toks = logical[end]
        if isinstance(toks, Statement) or toks[0].col <= outer:
            break
        if body_col is None:
            body_col = toks[0].col
        elif toks[0].col != body_col:
            raise GinSyntaxError(filename, toks[0].line, "inconsistent indentation in block")
        op = _first_operator(toks)
        if op is not None and op.string == "+=":
            raise GinSyntaxError(
                filename, toks[0].line, "'+=' is not supported inside a binding block"
            )
        end += 1
    return end


def _make(source: str, toks: list[_Tok], kind: str, target: str = "", value: str = "") -> Statement:
    """Build a statement spanning ``toks`` (first to last token, trailing comment excluded)."""
    return Statement(
        kind=kind,
        text=source[toks[0].start : toks[-1].end],
        line=toks[0].line,
        end_line=toks[-1].end_line,
        target=target,
        value=value,
        references=_references(toks) if kind in ("other", "append") else (),
    )


def _references(toks: list[_Tok]) -> tuple[str, ...]:
    """The selectors written after ``@`` (``@scope/torch.optim.AdamW()`` -> ``torch.optim.AdamW``).

    A reference is the run of adjacent name, ``.`` and ``/`` tokens right after the ``@``.
    """
    found: list[str] = []
    i = 0
    while i < len(toks):
        if toks[i].type == tokenize.OP and toks[i].string == "@":
            parts: list[str] = []
            end = toks[i].end
            j = i + 1
            while j < len(toks) and toks[j].start == end and _is_name_part(toks[j]):
                parts.append(toks[j].string)
                end = toks[j].end
                j += 1
            if parts:
                found.append("".join(parts).rpartition("/")[2])
            i = j
        else:
            i += 1
    return tuple(found)


def _is_name_part(tok: _Tok) -> bool:
    return tok.type == tokenize.NAME or (tok.type == tokenize.OP and tok.string in "./")


def _binding_key(source: str, toks: list[_Tok]) -> str:
    """``key`` of ``key = value`` when the statement has that shape, else empty."""
    op = _first_operator(toks)
    if op is None or op.string != "=" or op is toks[0]:
        return ""
    left = toks[: toks.index(op)]
    key = source[left[0].start : left[-1].end].strip()
    *scopes, selector = key.split("/")
    if all(_SCOPE_RE.match(s) for s in scopes) and _SELECTOR_RE.match(selector):
        return key
    return ""


def _classify(source: str, toks: list[_Tok], filename: str) -> Statement:
    """Tell appends, includes and imports apart from statements gin parses on its own."""
    op = _first_operator(toks)
    if op is not None and op.string == "+=":
        return _append(source, toks, op, filename)
    first = toks[0]
    if op is None and first.type == tokenize.NAME and first.string in ("import", "from"):
        return _make(source, toks, "import")
    if op is None and first.type == tokenize.NAME and first.string == "include":
        return _make(source, toks, "include", value=_include_path(toks, filename))
    return _make(source, toks, "other", target=_binding_key(source, toks))


def _append(source: str, toks: list[_Tok], op: _Tok, filename: str) -> Statement:
    """``key += value``: the key must look like a gin binding key and the value be present."""
    index = toks.index(op)
    left, right = toks[:index], toks[index + 1 :]
    if not left:
        raise GinSyntaxError(filename, op.line, "'+=' needs a binding key on its left")
    if not right:
        raise GinSyntaxError(filename, op.line, "'+=' needs a value on its right")
    target = source[left[0].start : left[-1].end].strip()
    *scopes, selector = target.split("/")
    if not (all(_SCOPE_RE.match(s) for s in scopes) and _SELECTOR_RE.match(selector)):
        raise GinSyntaxError(filename, left[0].line, f"invalid binding key {target!r} before '+='")
    value = source[right[0].start : right[-1].end]
    return _make(source, toks, "append", target=target, value=value)


def _include_path(toks: list[_Tok], filename: str) -> str:
    """The file name of ``include 'path'`` (adjacent literals concatenate, as in gin)."""
    parts = toks[1:]
    if not parts or any(tok.type != tokenize.STRING for tok in parts):
        raise GinSyntaxError(filename, toks[0].line, "expected a quoted file path after 'include'")
    try:
        path = ast.literal_eval(" ".join(tok.string for tok in parts))
    except (ValueError, SyntaxError):
        path = None
    if not isinstance(path, str) or not path:
        raise GinSyntaxError(filename, toks[0].line, "expected a quoted file path after 'include'")
    return path


_OPEN = "([{"
_CLOSE = {")": "(", "]": "[", "}": "{"}


def split_top_level(text: str) -> list[str]:
    """``text`` split at commas outside brackets, parentheses and quotes, each stripped.

    ``"1e-3,1e-2"`` -> two values; ``"[1, 2]"``, ``"'a,b'"`` and ``"f(1, 2)"`` -> one.
    Unbalanced brackets or quotes leave the text whole (gin reports them later).
    """
    parts: list[str] = []
    depth: list[str] = []
    quote = ""
    start = 0
    escaped = False
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            depth.append(char)
        elif char in _CLOSE:
            if not depth or depth[-1] != _CLOSE[char]:
                return [text.strip()]
            depth.pop()
        elif char == "," and not depth:
            parts.append(text[start:i].strip())
            start = i + 1
    if quote or depth:
        return [text.strip()]
    parts.append(text[start:].strip())
    return parts
