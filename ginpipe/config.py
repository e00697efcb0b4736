"""Compose gin files and ``--mod`` bindings into one bound config, with errors at file:line.

What this adds to plain gin (see the notes on gin 0.5.0's traps):

* ``include`` resolves against the including file's folder first, then the working
  directory and the search paths; include cycles are reported.
* ``KEY += [values]`` appends to a list, in files and in ``--mod``; statements are split
  with Python's tokenizer so ``=`` inside strings and multi-line lists is safe.
* every error becomes one ``ConfigError`` line naming the file and line, with a
  did-you-mean for unknown configurables, parameters and macros, and a hint to quote
  bare strings.
* the composed text (files with includes inlined, then the mods) is kept: parsing it
  again gives the identical config, which is what DDP children and resumes read.
"""

from __future__ import annotations

import hashlib
import importlib.util  # noqa: F401  (gin needs it loaded; see the gin notes, trap 4)
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gin

from ginpipe.errors import ConfigError
from ginpipe.gintext import GinSyntaxError, Statement, pad_to_line, split_statements
from ginpipe.suggest import did_you_mean, parameter_names

MOD_SOURCE = "--mod"
_MOD_RE = re.compile(r"^\s*(?P<key>[A-Za-z_][\w./]*)\s*(?P<op>\+?=)(?P<value>.*)$", re.DOTALL)
_BARE_WORD_RE = re.compile(r"^[A-Za-z_][\w-]*$")


@dataclass
class Composition:
    """The result of composing: what was read, the re-parseable text, and its digest."""

    files: list[str]
    mods: list[str]
    text: str
    bindings: str = ""
    digest: str = ""
    statements: list[tuple[str, Statement]] = field(default_factory=list, repr=False)


def prepare_registry() -> None:
    """Register everything configs may name before parsing (gin locks after finalize)."""
    from ginpipe import externals, pipeline  # noqa: F401  (pipeline registers `run`)

    externals.register_all()


def compose(
    files: Sequence[str | Path],
    mods: Sequence[str] = (),
    *,
    search_paths: Sequence[str | Path] = (),
) -> Composition:
    """Parse ``files`` in order, then ``mods``; finalize; return the composition."""
    paths = [_existing_file(Path(f)) for f in files]
    if not paths:
        raise ConfigError("no config file given, e.g. ginpipe run configs/base.gin")
    composer = _Composer([Path(p) for p in search_paths])
    composer.begin()
    for path in paths:
        composer.apply_file(path, via=None)
    composer.apply_mods(mods)
    return composer.finish([str(p) for p in files], list(mods))


def compose_text(text: str, origin: str, mods: Sequence[str] = ()) -> Composition:
    """Parse a composed text saved in a run directory (plus optional new mods)."""
    composer = _Composer([])
    composer.begin()
    composer.apply_text(text, origin, base_dir=Path(origin).parent)
    composer.apply_mods(mods)
    return composer.finish([origin], list(mods))


def _existing_file(path: Path) -> Path:
    if path.is_file():
        return path
    hint = ""
    if path.parent.is_dir():
        hint = did_you_mean(path.name, [p.name for p in path.parent.glob("*.gin")])
    kind = "is a directory" if path.is_dir() else "not found"
    raise ConfigError(f"config file {kind}: {path}{hint}")


class _Composer:
    """Applies statements to gin's global config one by one, keeping their origin."""

    def __init__(self, search_paths: list[Path]) -> None:
        self.search_paths = search_paths
        self.chunks: list[str] = []
        self.statements: list[tuple[str, Statement]] = []
        self.include_stack: list[Path] = []

    def begin(self) -> None:
        prepare_registry()
        gin.clear_config()

    # -- sources -----------------------------------------------------------------------

    def apply_file(self, path: Path, via: str | None) -> None:
        resolved = path.resolve()
        if resolved in self.include_stack:
            cycle = " -> ".join(str(p) for p in [*self.include_stack, resolved])
            raise ConfigError(f"{via}: include cycle: {cycle}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from e
        header = f"# --- {path}" + (f" (included from {via})" if via else "")
        self.chunks.append(header)
        self.include_stack.append(resolved)
        try:
            self.apply_text(text, str(path), base_dir=path.parent)
        finally:
            self.include_stack.pop()

    def apply_text(self, text: str, origin: str, base_dir: Path) -> None:
        try:
            statements = split_statements(text, origin)
        except GinSyntaxError as e:
            raise ConfigError(f"{_where(origin, e.line)}: {e.message}") from e
        for stmt in statements:
            if stmt.kind == "include":
                self.apply_file(
                    self._resolve_include(stmt, origin, base_dir), f"{origin}:{stmt.line}"
                )
                continue
            self.chunks.append(stmt.text)
            self._apply_statement(stmt, origin)

    def apply_mods(self, mods: Sequence[str]) -> None:
        if mods:
            self.chunks.append(f"# --- {MOD_SOURCE}")
        for mod in mods:
            match = _MOD_RE.match(mod)
            if not match or not match.group("value").strip():
                raise ConfigError(
                    f"malformed --mod {mod!r}: expected KEY=VALUE or KEY+=[...], "
                    'e.g. --mod "Trainer.max_epochs=3"'
                )
            origin = f"--mod {mod!r}"
            try:
                statements = split_statements(mod, origin)
            except GinSyntaxError as e:
                raise ConfigError(f"{origin}: {e.message}") from e
            if len(statements) != 1 or statements[0].kind not in ("other", "append"):
                raise ConfigError(f"{origin}: a --mod is one binding, KEY=VALUE")
            self.chunks.append(statements[0].text)
            self._apply_statement(statements[0], origin)

    def _resolve_include(self, stmt: Statement, origin: str, base_dir: Path) -> Path:
        name = Path(stmt.value)
        candidates = (
            [name]
            if name.is_absolute()
            else [
                base_dir / name,
                Path.cwd() / name,
                *(p / name for p in self.search_paths),
            ]
        )
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        tried = ", ".join(str(c) for c in candidates)
        raise ConfigError(f"{origin}:{stmt.line}: included file not found: {name} (tried {tried})")

    # -- statements ----------------------------------------------------------------------

    def _apply_statement(self, stmt: Statement, origin: str) -> None:
        self.statements.append((origin, stmt))
        try:
            if stmt.kind == "append":
                _append(stmt)
            else:
                gin.parse_config(pad_to_line(stmt.text, stmt.line))
        except ConfigError as e:
            raise ConfigError(f"{_where(origin, stmt.line)}: {e}") from e
        except Exception as e:  # gin re-types exceptions; catch broadly (trap 3)
            line = _gin_line(e) or stmt.line
            raise ConfigError(f"{_where(origin, line)}: {explain(e, stmt)}") from e

    def finish(self, files: list[str], mods: list[str]) -> Composition:
        try:
            gin.finalize()
        except Exception as e:
            raise ConfigError(self._explain_finalize(e)) from e
        # Keep registration open for modules imported lazily by tasks; no binding changes
        # happen after this point (gin 0.5.0 offers no public way to finalize without lock).
        gin.config._set_config_is_locked(False)
        bindings = gin.config_str()
        return Composition(
            files=files,
            mods=mods,
            text="\n".join(self.chunks) + "\n",
            bindings=bindings,
            digest=hashlib.sha256(bindings.encode()).hexdigest(),
            statements=self.statements,
        )

    def _explain_finalize(self, e: Exception) -> str:
        message = _first_line(e)
        macro = re.search(r"No bindings specified for '(?:(?P<name>[^/']+)/)?gin\.macro'", message)
        if macro:
            name = macro.group("name") or ""
            where = self._find(f"%{name}")
            hint = did_you_mean(name, _macro_names())
            return f"{where}unknown macro %{name}{hint}; define it, e.g. {name} = 0.01"
        required = re.search(r"(\S+)/macro\.value set to `%gin.REQUIRED`", message)
        if required:
            name = required.group(1)
            return f"{self._find(name)}macro {name} is required: set it, e.g. --mod '{name}=...'"
        return message

    def _find(self, needle: str) -> str:
        for origin, stmt in self.statements:
            if re.search(re.escape(needle) + r"\b", stmt.text):
                return f"{_where(origin, stmt.line)}: "
        return ""


def _append(stmt: Statement) -> None:
    """``key += [items]``: bind the current list (or the default) plus the new items."""
    try:
        extra = gin.config.parse_value(stmt.value)
    except Exception as e:
        raise ConfigError(f"cannot parse the value of {stmt.target} +=: {_first_line(e)}") from e
    if not isinstance(extra, (list, tuple)):
        raise ConfigError(f"{stmt.target} += needs a list, e.g. {stmt.target} += [{stmt.value}]")
    current = _current_value(stmt.target)
    if not isinstance(current, (list, tuple)):
        raise ConfigError(f"{stmt.target} += needs a list value, but it is {current!r}")
    gin.bind_parameter(stmt.target, [*current, *extra])


def _current_value(target: str) -> Any:
    try:
        return follow_macros(gin.query_parameter(target))
    except ValueError:
        pass
    scope_and_name, _, param = target.rpartition(".")
    selector = scope_and_name.rpartition("/")[2]
    configurable = gin.config._REGISTRY.get_match(selector)
    if configurable is None:
        raise ConfigError(f"No configurable matching '{selector}'{_configurable_hint(selector)}")
    import inspect

    fn = configurable.wrapped
    target_fn = fn.__init__ if inspect.isclass(fn) else fn
    parameter = inspect.signature(target_fn).parameters.get(param)
    if parameter is None:
        hint = did_you_mean(param, parameter_names(fn))
        raise ConfigError(f"'{selector}' has no parameter '{param}'{hint}")
    default = parameter.default
    return [] if default in (inspect.Parameter.empty, None, gin.REQUIRED) else default


def follow_macros(value: Any) -> Any:
    """``%MACRO`` -> its value (macros may point at macros)."""
    while isinstance(value, gin.config.ConfigurableReference) and (
        value._configurable.selector == "gin.macro"
    ):
        value = gin.config._CONFIG.get(("/".join(value._scopes), "gin.macro"), {}).get("value")
    return value


# -- error messages ------------------------------------------------------------------------


def explain(e: BaseException, stmt: Statement) -> str:
    """One line saying what is wrong with a statement, with a did-you-mean where possible."""
    message = _first_line(e)
    unknown = re.search(r"No configurable matching (?:reference )?'@?([^'()]+)(\(\))?'", message)
    if unknown:
        name = unknown.group(1).rpartition("/")[2]
        return f"unknown configurable '{name}'{_configurable_hint(name)}"
    param = re.search(r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'", message)
    if param:
        name, arg = param.groups()
        configurable = gin.config._REGISTRY.get_match(name)
        known = parameter_names(configurable.wrapped) if configurable else []
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
    return message


def _configurable_hint(name: str) -> str:
    return did_you_mean(name, _configurable_names(qualified="." in name))


def _configurable_names(qualified: bool) -> list[str]:
    selectors = [s for s, _ in gin.config._REGISTRY.items() if s != "gin.macro"]
    return selectors if qualified else [s.rpartition(".")[2] for s in selectors]


def _macro_names() -> list[str]:
    return [scope for (scope, selector) in gin.config._CONFIG if selector == "gin.macro"]


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0].strip()


def _gin_line(e: BaseException) -> int | None:
    matches = re.findall(r"line (\d+)", str(e))
    return int(matches[-1]) if matches else None


def _where(origin: str, line: int) -> str:
    return origin if origin.startswith(MOD_SOURCE) else f"{origin}:{line}"
