"""``operative.gin``: the config that ran, complete enough to run again on its own.

gin's own operative config (``gin.operative_config_str``) lists only what was called
through gin's wrappers. ginpipe builds some configured objects without them: ``fit`` turns
``@AdamW``/``@OneCycleLR`` into plain ``functools.partial`` factories (they must pickle into
spawned workers, docs/gin-notes.md), and a user's LightningModule or dotted-path class may be
built the same way. Those configurables are in the config, reached from ``run.tasks``, but
gin never saw them called. The operative config here is gin's, plus the bound section of
every configurable the pipeline reaches that gin did not record, plus the definition of
every macro the result uses, so that composing ``operative.gin`` alone gives the run's
cache keys again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ginpipe.config import ginapi

_SECTION_RE = re.compile(r"^# Parameters for (?P<name>.+):$")
_MACROS_HEADER = "# Macros:"
_RULE = "# " + "=" * 78
_MACRO_USE_RE = re.compile(r"%([A-Za-z_][\w./]*)")


@dataclass
class GinText:
    """gin config text split the way gin writes it: imports, macros, one section each."""

    imports: list[str] = field(default_factory=list)
    macros: dict[str, str] = field(default_factory=dict)  # name -> its whole statement
    sections: dict[str, str] = field(default_factory=dict)  # configurable -> its section

    def render(self) -> str:
        parts = ["\n".join(sorted(set(self.imports)))] if self.imports else []
        if self.macros:
            body = "\n".join(self.macros[name] for name in sorted(self.macros))
            parts.append(f"{_MACROS_HEADER}\n{_RULE}\n{body}")
        parts += [self.sections[name] for name in sorted(self.sections, key=str.lower)]
        return "\n\n".join(part.strip("\n") for part in parts) + "\n"


def parse(text: str) -> GinText:
    """Split gin's ``config_str``/``operative_config_str`` output (or ``operative.gin``)."""
    parsed = GinText()
    sections: dict[str, list[str]] = {}
    section: list[str] | None = None
    in_macros = False
    for line in text.splitlines():
        match = _SECTION_RE.match(line)
        if match:
            section, in_macros = sections.setdefault(match.group("name"), []), False
        elif line == _MACROS_HEADER:
            section, in_macros = None, True
            continue
        if in_macros:
            _add_macro_line(parsed.macros, line)
        elif section is not None:
            section.append(line)
        elif line.startswith("import "):
            parsed.imports.append(f"import {line.split()[1]}")  # gin's `as` aliases go unused
    parsed.sections = {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}
    return parsed


def _add_macro_line(macros: dict[str, str], line: str) -> None:
    if not line.strip() or line.startswith("#"):
        return
    if line[:1].isspace() and macros:  # a continuation of the last macro's value
        last = next(reversed(macros))
        macros[last] += "\n" + line
        return
    name = line.split("=", 1)[0].strip()
    macros[name] = line


def complete(called: str, bound: str, reached: Iterable[str]) -> str:
    """gin's operative config ``called`` completed from the bound config ``bound``.

    ``reached``: selectors of the configurables the pipeline reaches (its tasks, what their
    bindings reference, what tasks declare they build). Each of them missing from
    ``called`` gets its bound section; every macro the result uses is defined.
    """
    result, config = parse(called), parse(bound)
    wanted = set(reached)
    for name, body in config.sections.items():
        if name not in result.sections and _selector(name) in wanted:
            result.sections[name] = body
    result.imports = sorted(set(result.imports) | set(config.imports))
    result.macros = _macros_used(result, config.macros)
    return result.render()


def _selector(section_name: str) -> str | None:
    """``train/Trainer`` -> the registered selector of ``Trainer``."""
    name = section_name.rpartition("/")[2]
    try:
        found = ginapi.find(name)
    except ValueError:
        return None
    return found.selector if found is not None else None


def _macros_used(text: GinText, defined: Mapping[str, str]) -> dict[str, str]:
    """The definitions of the macros ``text`` refers to, and of those they refer to."""
    used: dict[str, str] = dict(text.macros)
    pending = _MACRO_USE_RE.findall("\n".join(text.sections.values()))
    while pending:
        name = pending.pop()
        if name in used or name not in defined:
            continue
        used[name] = defined[name]
        pending += _MACRO_USE_RE.findall(defined[name].split("=", 1)[-1])
    return used


def merge(previous: str, current: str) -> str:
    """``current`` plus what ``previous`` (an earlier attempt of the run) has that it lacks:
    a resume that reads steps from the cache calls fewer configurables."""
    result, old = parse(current), parse(previous)
    for name, body in old.sections.items():
        result.sections.setdefault(name, body)
    for name, statement in old.macros.items():
        result.macros.setdefault(name, statement)
    result.imports = sorted(set(result.imports) | set(old.imports))
    return result.render()


def drop_unused(text: str, unused: Mapping[str, set[str]]) -> str:
    """Remove ``task.parameter = ...`` bindings, with their indented continuation lines."""
    if not unused:
        return text
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if skipping and line[:1].isspace():
            continue
        key = line.split("=", 1)[0].strip() if not line.startswith("#") else ""
        configurable, _, parameter = key.rpartition(".")
        skipping = parameter in unused.get(configurable.rpartition(".")[2], ())
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"
