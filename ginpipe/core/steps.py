"""The task list as steps: each task with its gin selector and scope, wired by state keys.

A ``Step`` is what the config says about one task, before anything about the cache is
known: which task, under which name and scope, reading and writing which state keys. It is
immutable; the plan (``ginpipe/core/plan.py``) pairs each with a decision. Everything here
is checked before any work: the wiring (a read nobody writes, two writers, a cycle),
required parameters, each task's own check, the main metric.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gin import REQUIRED

from ginpipe.base.errors import ConfigError, WiringError
from ginpipe.base.suggest import did_you_mean
from ginpipe.config import ginapi
from ginpipe.core import fingerprint, graph, nesting
from ginpipe.core.nesting import Nested
from ginpipe.core.taskdef import TaskSpec, spec_of


@dataclass(frozen=True)
class Step:
    """One task of the list, wired: its state keys, and for a nested pipeline's task
    (``ginpipe/core/nesting.py``) its namespace and how its declared keys map to state keys."""

    index: int
    spec: TaskSpec
    call: Any  # the (possibly scoped) gin wrapper; calling it applies the bindings
    selector: str
    scope: str
    namespace: str = ""
    renames: Mapping[str, str] = field(default_factory=dict)
    extra_resources: Mapping[str, float] = field(default_factory=dict)
    # State key -> the key the task declares (identity outside nested pipelines).
    local: Mapping[str, str] = field(default_factory=dict)
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The task's name in logs and records: ``logreg/fit_sklearn`` inside a nested
        pipeline, else its own name."""
        return f"{self.namespace}/{self.spec.name}" if self.namespace else self.spec.name

    @property
    def resources(self) -> dict[str, float]:
        """What the task needs (``@task(resources=)``, or its nested pipeline's)."""
        return {**dict(self.spec.needs.resources), **self.extra_resources}

    def state_key(self, own: str) -> str:
        """The state key of a key the task declares."""
        return next((k for k, v in self.local.items() if v == own), own)


def _step(index: int, spec: TaskSpec, call: Any, selector: str, scope: str, **nested: Any) -> Step:
    """A step whose keys are the task's own (``resolve_keys`` maps a nested task's)."""
    local = {k: k for k in (*spec.reads, *spec.writes)}
    return Step(
        index,
        spec,
        call,
        selector,
        scope,
        **nested,
        local=local,
        reads=spec.reads,
        writes=spec.writes,
    )


def task_steps(tasks: Sequence[Any]) -> list[Step]:
    """Pair each task callable from ``run.tasks`` with its gin selector and scope; a nested
    pipeline's tasks each become a step in its namespace."""
    refs = _task_references()
    if len(refs) != len(tasks):
        refs = [None] * len(tasks)
    steps: list[Step] = []
    for i, (call, ref) in enumerate(zip(tasks, refs, strict=True)):
        if isinstance(call, Nested):
            steps += _nested_steps(call, len(steps), f"run.tasks[{i}]")
            continue
        try:
            spec = spec_of(call)
        except TypeError as e:
            raise ConfigError(f"run.tasks[{i}]: {e}") from e
        if ref is not None:
            configurable, scope, _ = ginapi.reference_parts(ref)
            selector = configurable.selector
        else:
            selector, scope = f"{spec.fn.__module__}.{spec.name}", ""
        steps.append(_step(len(steps), spec, call, selector, scope))
    return steps


def _nested_steps(nested: Nested, start: int, where: str, outer: str = "") -> list[Step]:
    """The steps of a nested pipeline (nested ones within it flattened too)."""
    nesting.check(nested, where)
    namespace = f"{outer}/{nested.name}" if outer else nested.name
    steps: list[Step] = []
    for j, call in enumerate(nested.tasks):
        if isinstance(call, Nested):
            steps += _nested_steps(call, start + len(steps), f"{where}.tasks[{j}]", namespace)
            continue
        try:
            spec = spec_of(call)
        except TypeError as e:
            raise ConfigError(f"{where} ({nested.name}/pipeline.tasks[{j}]): {e}") from e
        found = ginapi.registration_of(call)
        selector = found.selector if found else f"{spec.fn.__module__}.{spec.name}"
        steps.append(
            _step(
                start + len(steps),
                spec,
                call,
                selector,
                namespace,
                namespace=namespace,
                renames=nested.keys,
                extra_resources=nested.resources,
            )
        )
    return steps


def resolve_keys(steps: Sequence[Step]) -> list[Step]:
    """Map each nested task's declared keys to state keys: what it writes goes under its
    namespace (or the name ``keys`` renames it to); what it reads is its namespace's own key
    when a task of the namespace writes it, else the key outside. A rename of a key no task
    of the namespace writes is refused."""
    written_in: dict[str, set[str]] = {}
    for step in steps:
        if step.namespace:
            written_in.setdefault(step.namespace, set()).update(step.spec.writes)
    for namespace, written in written_in.items():
        renames = next(s.renames for s in steps if s.namespace == namespace)
        unknown = sorted(set(renames) - written)
        if unknown:
            raise WiringError(
                f"{namespace}/pipeline.keys renames {', '.join(repr(k) for k in unknown)}, "
                f"which no task of '{namespace}' writes (they write "
                f"{', '.join(sorted(written)) or 'nothing'})"
            )
    namespaced = [
        _namespace_keys(step, written_in[step.namespace]) if step.namespace else step
        for step in steps
    ]
    return _expand_patterns(namespaced)


def _namespace_keys(step: Step, own: set[str]) -> Step:
    """A nested task's reads and writes as state keys."""
    local: dict[str, str] = {}
    for key in step.spec.reads:
        local[_inner_key(step, key) if key in own else key] = key
    for key in step.spec.writes:
        local[_inner_key(step, key)] = key
    return dataclasses.replace(
        step,
        local=local,
        reads=tuple(_inner_key(step, k) if k in own else k for k in step.spec.reads),
        writes=tuple(_inner_key(step, k) for k in step.spec.writes),
    )


def _expand_patterns(steps: list[Step]) -> list[Step]:
    """A read with ``*`` (``@task(reads=("*/metrics",))``) reads every key like it that
    another task writes, in the order of the list: one task comparing the branches of a
    run. A pattern no key matches is refused."""
    expanded: list[Step] = []
    for step in steps:
        if not any("*" in key for key in step.spec.reads):
            expanded.append(step)
            continue
        others = [k for s in steps if s is not step for k in s.writes]
        reads: list[str] = []
        local = dict(step.local)
        for key in step.reads:
            if "*" not in key:
                reads.append(key)
                continue
            matched = [k for k in others if fnmatch.fnmatchcase(k, key)]
            if not matched:
                raise WiringError(
                    f"task '{step.name}' reads '{key}', but no task in run.tasks writes a key "
                    f"like it"
                )
            reads += [k for k in matched if k not in reads]
            local.pop(key, None)
        local.update({k: k for k in reads if k not in local})
        expanded.append(dataclasses.replace(step, reads=tuple(reads), local=local))
    return expanded


def _inner_key(step: Step, key: str) -> str:
    return step.renames.get(key) or f"{step.namespace}/{key}"


def _task_references() -> list[Any]:
    """The references bound to ``run.tasks`` with macros followed (never called)."""
    try:
        value = ginapi.follow_macros(ginapi.query("ginpipe.run.tasks"))
    except ValueError:
        return []
    if not isinstance(value, (list, tuple)):
        return []
    return [v if ginapi.is_reference(v) else None for v in value]


def in_graph_order(steps: Sequence[Step]) -> list[Step]:
    """The steps with their state keys, in an order of their data dependencies (list order
    breaks ties), each ``index`` its position in that order. Refuses a read nobody writes,
    a key two tasks write and a cycle, naming the tasks and keys (``ginpipe/core/graph.py``)."""
    ordered = graph.ordered(resolve_keys(steps))
    return [dataclasses.replace(step, index=i) for i, step in enumerate(ordered)]


def check_required(steps: Sequence[Step]) -> None:
    """Fail before any work if a task's required parameter is not bound in the config."""
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    for step in steps:
        hints = dict(step.spec.checks.hints)
        # The first parameter receives the state; gin fills the others from the config.
        for name, param in list(inspect.signature(step.spec.fn).parameters.items())[1:]:
            no_default = param.default is inspect.Parameter.empty and param.kind in keyword
            must_set = (
                no_default or param.default is REQUIRED or (name in hints and param.default is None)
            )
            if not must_set:
                continue
            scopes = fingerprint.scope_prefixes(step.scope)
            if not ginapi.is_bound(step.selector, name, scopes):
                hint = hints.get(
                    name, f"set it in a config file or with --mod {step.spec.name}.{name}=..."
                )
                raise ConfigError(f"{step.spec.name}.{name} is required but not set: {hint}")


def check_tasks(steps: Sequence[Step]) -> None:
    """Each task's own config check (``@task(check=...)``), before any task runs."""
    for step in steps:
        if step.spec.checks.check is not None:
            step.spec.checks.check()


def check_main_metric(steps: Sequence[Step], report_key: str, main_metric: str) -> None:
    """``run.main_metric`` must name a number the reporting task declares it writes
    (``@task(metrics=...)``); a task that declares none is not checked."""
    reporter = next((s for s in reversed(steps) if report_key in s.writes), None)
    if reporter is None or not reporter.spec.checks.metrics:
        return
    patterns = reporter.spec.checks.metrics
    if any(fnmatch.fnmatchcase(main_metric, p) for p in patterns):
        return
    plain = [p for p in patterns if "*" not in p]
    raise ConfigError(
        f"run.main_metric={main_metric!r} is not a metric of '{reporter.spec.name}', which "
        f"reports {', '.join(patterns)}{did_you_mean(main_metric, plain)}",
        binding="ginpipe.run.main_metric",
    )
