"""Compose gin files and ``--mod`` bindings into one bound config, with errors at file:line.

Composing happens in two passes:

1. **Read** every file (includes inlined) and every ``--mod`` into statements, and check
   their syntax. Nothing is imported yet, so a typo in any file is reported at once.
2. **Apply** the statements in order. Just before gin reads a statement, the names it uses
   (its binding key and its ``@references``) are imported and registered
   (``ginpipe.config.names``): a config imports exactly the modules it names. A binding that a
   later statement replaces is never applied (later wins anyway), so a base config's
   ``run.tasks`` that a model config replaces imports nothing.

What this adds to plain gin (docs/gin-notes.md has the traps behind it):

* ``include`` resolves against the including file's folder, then the working directory,
  then the shipped configs; include cycles are reported.
* ``KEY += [values]`` appends to a list, in files and in ``--mod``.
* any importable callable can be named by its dotted path, and common ones by a short
  name (``@AdamW``), without decorating them.
* every error becomes one ``ConfigError`` line naming the file and line, with a
  did-you-mean for unknown configurables, parameters and macros, and a hint to quote
  bare strings.
* the composed text (files with includes inlined, then the mods) is kept: parsing it
  again gives the identical config, which is what DDP children and resumes read.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gin
from loguru import logger

from ginpipe.base.errors import ConfigError
from ginpipe.base.suggest import did_you_mean, parameter_names
from ginpipe.config import executors, ginapi, names, settings  # noqa: F401  (`run`, `executors` registered)
from ginpipe.config.gintext import GinSyntaxError, Statement, split_statements, split_top_level
from ginpipe.config.shipped import SHIPPED_DIR, resolve_config

MOD_SOURCE = "--mod"
# Macros every config may use; their values are known once the run directory is decided.
RUN_MACROS = ("RUN_DIR", "RUN_NAME", "PROJECT")
_MOD_RE = re.compile(r"^\s*(?P<key>[A-Za-z_][\w./]*)\s*(?P<op>\+?=)(?P<value>.*)$", re.DOTALL)
_BARE_WORD_RE = re.compile(r"^[A-Za-z_][\w-]*$")
_MACRO_USE_RE = re.compile(r"%([A-Za-z_][\w./]*)")


@dataclass(frozen=True)
class Source:
    """A statement and where it came from (a file path, or ``--mod '...'``)."""

    origin: str
    statement: Statement

    @property
    def where(self) -> str:
        return _where(self.origin, self.statement.line)


@dataclass
class Composition:
    """The result of composing: what was read, the re-parseable text, and its digest."""

    files: list[str]
    mods: list[str]
    text: str
    bindings: str = ""
    digest: str = ""
    sources: list[Source] = field(default_factory=list, repr=False)


def compose(
    files: Sequence[str | Path],
    mods: Sequence[str] = (),
    *,
    search_paths: Sequence[str | Path] = (),
    on_read: Callable[[list[str]], None] | None = None,
) -> Composition:
    """Read ``files`` (local paths or shipped config names) and ``mods``, then apply them.

    ``on_read`` gets the names the config uses once it is read, before anything it names is
    imported (a run starts its helper processes then: ``ginpipe/base/prestart.py``)."""
    if not files:
        raise ConfigError("no config given, e.g. ginpipe run base models/resnet")
    reader = _Reader([Path(p) for p in search_paths])
    for file in files:
        reader.read_file(resolve_config(file), via=None)
    reader.read_mods(mods)
    if on_read is not None:
        on_read(used_names(reader.sources))
    return _apply(reader, [str(f) for f in files], list(mods))


def compose_text(
    text: str,
    origin: str,
    mods: Sequence[str] = (),
    on_read: Callable[[list[str]], None] | None = None,
) -> Composition:
    """Parse a composed text saved in a run directory (plus optional new mods)."""
    reader = _Reader([])
    reader.read_text(text, origin, base_dir=Path(origin).parent)
    reader.read_mods(mods)
    if on_read is not None:
        on_read(used_names(reader.sources))
    return _apply(reader, [origin], list(mods))


def used_names(sources: Sequence[Source]) -> list[str]:
    """Every configurable the statements bind or reference, in order, once each."""
    found = (n for s in sources for n in (s.statement.configurable, *s.statement.references))
    return list(dict.fromkeys(n for n in found if n))


# -- pass 1: read ------------------------------------------------------------------------------


class _Reader:
    """Files and mods -> statements with their origins; includes inlined; syntax checked."""

    def __init__(self, search_paths: list[Path]) -> None:
        self.search_paths = [*search_paths, SHIPPED_DIR]
        self.chunks: list[str] = []
        self.sources: list[Source] = []
        self.include_stack: list[Path] = []

    def read_file(self, path: Path, via: str | None) -> None:
        resolved = path.resolve()
        if resolved in self.include_stack:
            cycle = " -> ".join(str(p) for p in [*self.include_stack, resolved])
            raise ConfigError(f"{via}: include cycle: {cycle}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from e
        self.chunks.append(f"# --- {path}" + (f" (included from {via})" if via else ""))
        self.include_stack.append(resolved)
        try:
            self.read_text(text, str(path), base_dir=path.parent)
        finally:
            self.include_stack.pop()

    def read_text(self, text: str, origin: str, base_dir: Path) -> None:
        try:
            statements = split_statements(text, origin)
        except GinSyntaxError as e:
            raise ConfigError(f"{_where(origin, e.line)}: {e.message}") from e
        for stmt in statements:
            if stmt.kind == "include":
                include = self._resolve_include(stmt, origin, base_dir)
                self.read_file(include, f"{origin}:{stmt.line}")
                continue
            self._add(Source(origin, stmt))

    def read_mods(self, mods: Sequence[str]) -> None:
        if mods:
            self.chunks.append(f"# --- {MOD_SOURCE}")
        for mod in mods:
            match = _MOD_RE.match(mod)
            if not match or not match.group("value").strip():
                raise ConfigError(
                    f"malformed --mod {mod!r}: expected KEY=VALUE or KEY+=[...], "
                    'e.g. --mod "Trainer.max_epochs=3"'
                )
            origin = f"{MOD_SOURCE} {mod!r}"
            if match.group("op") == "=" and len(split_top_level(match.group("value"))) > 1:
                raise ConfigError(
                    f"{origin}: a comma list is a sweep axis: use `ginpipe sweep` "
                    "(or write a list in brackets, [a, b])"
                )
            try:
                statements = split_statements(mod, origin)
            except GinSyntaxError as e:
                raise ConfigError(f"{origin}: {e.message}") from e
            if len(statements) != 1 or statements[0].kind not in ("other", "append"):
                raise ConfigError(f"{origin}: a --mod is one binding, KEY=VALUE")
            self._add(Source(origin, statements[0]))

    def _add(self, source: Source) -> None:
        stmt = source.statement
        if stmt.kind in ("other", "append") and not stmt.simple:
            text = f"{stmt.target} = {stmt.value}" if stmt.kind == "append" else stmt.text
            try:
                ginapi.check_syntax(text)
            except Exception as e:  # gin's parser raises several types; all mean syntax
                line = stmt.line + (_gin_line(e) or 1) - 1
                raise ConfigError(f"{_where(source.origin, line)}: {explain(e, stmt)}") from e
        self.chunks.append(stmt.text)
        self.sources.append(source)

    def _resolve_include(self, stmt: Statement, origin: str, base_dir: Path) -> Path:
        name = Path(stmt.value)
        candidates = (
            [name]
            if name.is_absolute()
            else [base_dir / name, Path.cwd() / name, *(p / name for p in self.search_paths)]
        )
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        tried = ", ".join(str(c) for c in candidates)
        raise ConfigError(f"{origin}:{stmt.line}: included file not found: {name} (tried {tried})")


# -- pass 2: apply -----------------------------------------------------------------------------


def _apply(reader: _Reader, files: list[str], mods: list[str]) -> Composition:
    gin.clear_config()
    ginapi.unlock()  # a previous composition in this process left the config locked
    replaced = _replaced(reader.sources)
    _bind_run_macro_placeholders(reader.sources)
    for index, source in enumerate(reader.sources):
        if index in replaced:
            _check_names_known(source)
        else:
            _apply_statement(source)
    _finalize(reader.sources, replaced)
    bindings = ginapi.config_text()
    return Composition(
        files=files,
        mods=mods,
        text="\n".join(reader.chunks) + "\n",
        bindings=bindings,
        digest=hashlib.sha256(bindings.encode()).hexdigest(),
        sources=reader.sources,
    )


def _bind_run_macro_placeholders(sources: Sequence[Source]) -> None:
    """``%RUN_DIR``, ``%RUN_NAME`` and ``%PROJECT`` are bound to placeholders while composing
    (so the config's digest does not depend on where it runs) and to their real values by
    ``bind_run_macros`` before any task runs. A config that defines one itself wins."""
    defined = {s.statement.target for s in sources if s.statement.kind == "other"}
    for name in RUN_MACROS:
        used = any(f"%{name}" in s.statement.text for s in sources)
        if used and name not in defined:
            ginapi.bind_macro(name, f"<{name}>")


def bind_run_macros(run_dir: Path) -> bool:
    """The real values of the run macros a config uses (see above); True if it uses any."""
    values = {"RUN_DIR": str(run_dir), "RUN_NAME": run_dir.name, "PROJECT": run_dir.parent.name}
    bound = False
    for name, value in values.items():
        if ginapi.macro_value(name) in (f"<{name}>", value):
            ginapi.bind_macro(name, value)
            bound = True
    return bound


def _replaced(sources: Sequence[Source]) -> set[int]:
    """Indices of plain bindings that a later plain binding of the same key replaces."""
    later: set[str] = set()
    replaced = set()
    for index in range(len(sources) - 1, -1, -1):
        stmt = sources[index].statement
        if stmt.kind == "other" and stmt.target:
            if stmt.target in later:
                replaced.add(index)
            later.add(stmt.target)
    return replaced


def _check_names_known(source: Source) -> None:
    """A replaced binding is not applied, but a name nobody could resolve is still a typo.

    Dotted paths are not imported for it (that is the point of not applying it)."""
    stmt = source.statement
    for name in (stmt.configurable, *stmt.references):
        if name and "." not in name and not names.is_known(name):
            raise ConfigError(f"{source.where}: unknown configurable '{name}'{_hint(name)}")


def _apply_statement(source: Source) -> None:
    stmt = source.statement
    try:
        if stmt.kind == "import":
            names.import_module(_imported_module(stmt))
            gin.parse_config(stmt.text)
            return
        for name in (stmt.configurable, *stmt.references):
            if name:
                names.make_configurable(name)
        if stmt.kind == "append":
            _append(stmt)
        elif stmt.simple and not stmt.references and "%" not in stmt.text:
            _bind_literal(stmt)
        else:
            gin.parse_config(stmt.text)
    except ConfigError as e:
        raise ConfigError(f"{source.where}: {e}") from e
    except Exception as e:  # gin re-types exceptions; catch broadly (docs/gin-notes.md)
        line = stmt.line + (_gin_line(e) or 1) - 1
        raise ConfigError(f"{_where(source.origin, line)}: {explain(e, stmt)}") from e


def _bind_literal(stmt: Statement) -> None:
    """``key = literal`` on one line, bound as gin would bind it, without gin's parser (which
    costs a tokenizer per statement: the bulk of composing a long config)."""
    value = ast.literal_eval(stmt.text.partition("=")[2].strip())
    scope, _, rest = stmt.target.rpartition("/")
    selector, _, parameter = rest.rpartition(".")
    if selector:
        ginapi.bind((scope, selector, parameter), value)
    else:
        ginapi.bind_macro(stmt.target, value)


def _imported_module(stmt: Statement) -> str:
    words = stmt.text.split()
    if words[0] == "from":  # `from a.b import c`
        return f"{words[1]}.{words[3]}" if len(words) >= 4 else words[1]
    return words[1] if len(words) > 1 else ""


def _finalize(sources: Sequence[Source], replaced: set[int]) -> None:
    _check_macro_cycles(sources)
    try:
        gin.finalize()
    except Exception as e:
        raise ConfigError(_explain_finalize(e, sources)) from e
    ginapi.unlock()
    _check_unused_macros(sources, replaced)


def _check_unused_macros(sources: Sequence[Source], replaced: set[int]) -> None:
    """A macro no binding uses is a typo or a knob that does nothing.

    A ``--mod`` that sets such a macro changes nothing, and is refused. In a file it is a
    one-line warning naming the line: files are shared between compositions, and one may
    define a macro that only a binding replaced later used (a debug config setting
    ``Trainer.max_epochs`` directly): that is how composition works, and says nothing.
    """
    used = ginapi.referenced_macros()
    unused = [
        (index, source)
        for index, source in enumerate(sources)
        if source.statement.kind == "other"
        and source.statement.target
        and "." not in source.statement.target
        and source.statement.target not in used
        and index not in replaced
    ]
    if not unused:
        return
    users_of: dict[str, list[Source]] = {}
    for source in sources:
        for name in set(_MACRO_USE_RE.findall(source.statement.text)):
            users_of.setdefault(name, []).append(source)
    for _, source in unused:
        name = source.statement.target
        users = users_of.get(name, [])
        from_mod = source.origin.startswith(MOD_SOURCE)
        if users and not from_mod:
            continue  # the file's own binding that used it was replaced later
        hint = did_you_mean(name, sorted(used))
        if users:
            user = users[-1]
            later = [s for s in sources if s.statement.target == user.statement.target]  # once
            hint += f"; {user.statement.target} is set by {later[-1].where} instead"
        if from_mod:
            raise ConfigError(f"{source.where}: macro {name} is used by no binding{hint}")
        # A file may carry knobs for other compositions (GinPipe configs often do): say so
        # once, naming the line; a --mod that does nothing is refused above.
        logger.warning(f"{source.where}: macro {name} is used by no binding{hint}")


def _check_macro_cycles(sources: Sequence[Source]) -> None:
    for name in ginapi.macro_names():
        chain = ginapi.macro_chain(name)
        if len(chain) > 1 and chain[-1] in chain[:-1]:
            where = _find(sources, f"{name} =")
            raise ConfigError(f"{where}macro cycle: {' -> '.join(chain)}")


def _explain_finalize(e: Exception, sources: Sequence[Source]) -> str:
    message = _first_line(e)
    macro = re.search(r"No bindings specified for '(?:(?P<name>[^/']+)/)?gin\.macro'", message)
    if macro:
        name = macro.group("name") or ""
        hint = did_you_mean(name, ginapi.macro_names())
        return (
            f"{_find(sources, f'%{name}')}unknown macro %{name}{hint}; "
            f"define it, e.g. {name} = 0.01"
        )
    required = re.search(r"(\S+)/macro\.value set to `%gin.REQUIRED`", message)
    if required:
        name = required.group(1)
        return f"{_find(sources, name)}macro {name} is required: set it, e.g. --mod '{name}=...'"
    return message


def _find(sources: Sequence[Source], needle: str) -> str:
    for source in sources:
        if re.search(re.escape(needle) + r"\b", source.statement.text):
            return f"{source.where}: "
    return ""


def _append(stmt: Statement) -> None:
    """``key += [items]``: bind the current list (or the default) plus the new items."""
    try:
        extra = ginapi.parse_value(stmt.value)
    except Exception as e:
        raise ConfigError(f"cannot parse the value of {stmt.target} +=: {_first_line(e)}") from e
    if not isinstance(extra, (list, tuple)):
        raise ConfigError(f"{stmt.target} += needs a list, e.g. {stmt.target} += [{stmt.value}]")
    current = _current_value(stmt.target)
    if not isinstance(current, (list, tuple)):
        raise ConfigError(f"{stmt.target} += needs a list value, but it is {current!r}")
    ginapi.bind(stmt.target, [*current, *extra])


def _current_value(target: str) -> Any:
    try:
        return ginapi.follow_macros(ginapi.query(target))
    except ValueError:
        pass
    scope_and_name, _, param = target.rpartition(".")
    selector = scope_and_name.rpartition("/")[2]
    configurable = ginapi.find(selector)
    if configurable is None:
        raise ConfigError(f"unknown configurable '{selector}'{_hint(selector)}")
    fn = configurable.wrapped
    target_fn = fn.__init__ if inspect.isclass(fn) else fn
    parameter = inspect.signature(target_fn).parameters.get(param)
    if parameter is None:
        hint = did_you_mean(param, parameter_names(fn))
        raise ConfigError(f"'{selector}' has no parameter '{param}'{hint}")
    default = parameter.default
    return [] if default in (inspect.Parameter.empty, None, gin.REQUIRED) else default


# -- error messages ------------------------------------------------------------------------


def explain(e: BaseException, stmt: Statement) -> str:
    """One line saying what is wrong with a statement, with a did-you-mean where possible."""
    message = _first_line(e)
    unknown = re.search(r"No configurable matching (?:reference )?'@?([^'()]+)(\(\))?'", message)
    if unknown:
        name = unknown.group(1).rpartition("/")[2]
        return f"unknown configurable '{name}'{_hint(name)}"
    param = re.search(r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'", message)
    if param:
        name, arg = param.groups()
        configurable = ginapi.find(name)
        known: list[str] = parameter_names(configurable.wrapped) if configurable else []
        return f"'{name}' has no parameter '{arg}'{did_you_mean(arg, known)}"
    token = re.search(r"Failed to parse token '([^']+)'", str(e))
    if token and _BARE_WORD_RE.match(token.group(1)):
        word = token.group(1)
        key = stmt.text.split("=", 1)[0].strip()
        return f"cannot parse value {word}: strings must be quoted, e.g. {key}='{word}'"
    if isinstance(e, ModuleNotFoundError):
        missing = re.search(r"No module named '([^']+)'", str(e))
        name = e.name or (missing.group(1) if missing else stmt.text.split()[-1])
        return f"cannot import module '{name}' named in an import line"
    message = re.sub(r"\s*\(line \d+\)\.?$", "", message) or message
    habit = _ginpipe_habit(stmt.text)
    return f"{message.rstrip('.')}; {habit}" if habit else message


def _ginpipe_habit(text: str) -> str:
    """What GinPipe's own syntax is written as here (docs/coming-from-ginpipe.md)."""
    stripped = text.lstrip()
    if stripped.startswith("!load_template"):
        template = stripped.partition(":")[2].strip().strip("'\"") or "other.gin"
        return (
            f"GinPipe's !load_template is not gin: write include '{template}' "
            "(relative to this file), or name both configs on the command line"
        )
    dollar = re.search(r"\$([A-Za-z_]\w*)", stripped)
    if dollar is None:
        return ""
    name = dollar.group(1)
    if stripped.startswith("$"):
        return (
            f"GinPipe's ${name} = ... is a gin macro here: write {name} = ... and use it as %{name}"
        )
    return f"GinPipe's ${name} is written %{name} in gin (a macro defined as {name} = ...)"


def _hint(name: str) -> str:
    if "." in name:
        return did_you_mean(name, [*ginapi.selectors(), *names.short_names().values()])
    return did_you_mean(name, names.known_names())


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0].strip()


def _gin_line(e: BaseException) -> int | None:
    matches = re.findall(r"line (\d+)", str(e))
    return int(matches[-1]) if matches else None


def _where(origin: str, line: int) -> str:
    return origin if origin.startswith(MOD_SOURCE) else f"{origin}:{line}"
