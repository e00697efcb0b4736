"""The task graph: an edge from the task that writes a state key to every task that reads it.

``run.tasks`` lists tasks; what each reads and writes (``@task(reads=, writes=)``) makes
them a graph. Tasks run in an order of that graph, the list order breaking ties, so a list
that already names every writer before its readers runs exactly as listed (with the same
cache keys: a key depends on a task's inputs, never on its position). A key two tasks write,
a read nobody writes and a cycle are refused before any work, naming the tasks and keys.

networkx is imported only when the list is not already in a valid order, or for a picture
or a partial run; a linear pipeline pays nothing for the graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ginpipe.base.errors import ConfigError, WiringError
from ginpipe.base.suggest import did_you_mean
from ginpipe.core.taskdef import TaskSpec

if TYPE_CHECKING:
    import networkx as nx


class Node(Protocol):
    """What the graph needs of a step: the state keys it reads and writes, its task and gin
    scope."""

    @property
    def index(self) -> int: ...

    @property
    def spec(self) -> TaskSpec: ...

    @property
    def scope(self) -> str: ...

    @property
    def reads(self) -> tuple[str, ...]: ...

    @property
    def writes(self) -> tuple[str, ...]: ...


N = TypeVar("N", bound=Node)


def label(node: Node) -> str:
    """The name a task goes by in messages, pictures and ``--from``/``--only``:
    ``name``, or ``scope/name`` for a scoped reference (``@logreg/fit_sklearn``)."""
    return f"{node.scope}/{node.spec.name}" if node.scope else node.spec.name


def writers(nodes: Sequence[Node]) -> dict[str, Node]:
    """Which task writes each key; a key two tasks write is refused."""
    found: dict[str, Node] = {}
    for node in nodes:
        for key in node.writes:
            if key in found:
                raise WiringError(
                    f"tasks '{label(found[key])}' and '{label(node)}' both write '{key}': "
                    f"a key has one writer (rename one output, or drop one task)"
                )
            found[key] = node
    return found


def dependencies(steps: Sequence[Node]) -> dict[int, set[int]]:
    """For each step, the steps it must wait for: the writers of what it reads; around a
    step that writes nothing, the list order."""
    writer = {key: s.index for s in steps for key in s.writes}
    needs = {s.index: {writer[k] for k in s.reads if k in writer} for s in steps}
    for position, step in enumerate(steps):
        if not step.writes:
            needs[step.index] |= {s.index for s in steps[:position]}
            for later in steps[position + 1 :]:
                needs[later.index].add(step.index)
    return needs


def check(nodes: Sequence[Node]) -> None:
    """Refuse an empty list, a key with two writers, a read nobody writes and a cycle."""
    ordered(nodes)


def ordered(nodes: Sequence[N]) -> list[N]:
    """The nodes in execution order: list order where it is already valid, else a
    topological order of the graph with the list position breaking ties."""
    if not nodes:
        raise WiringError("run.tasks is empty: list at least one task")
    written = writers(nodes)
    for node in nodes:
        for key in node.reads:
            if key not in written:
                raise WiringError(
                    f"task '{label(node)}' reads '{key}', but no task in run.tasks writes it"
                )
    if _in_list_order(nodes):
        return list(nodes)
    import networkx as nx

    graph = dependency_graph(nodes)
    cycle = _cycle(graph, nodes)
    if cycle:
        raise WiringError(f"the tasks form a cycle: {cycle}; a task cannot need its own output")
    return [nodes[i] for i in nx.lexicographical_topological_sort(graph)]


def _in_list_order(nodes: Sequence[Node]) -> bool:
    """Every key read is written by an earlier task (and no task reads its own output)."""
    seen: set[str] = set()
    for node in nodes:
        if any(key not in seen for key in node.reads):
            return False
        seen.update(node.writes)
    return True


def dependency_graph(nodes: Sequence[Node]) -> nx.DiGraph:
    """Nodes are positions in ``nodes``; an edge writer -> reader holds the keys it carries
    (``keys``). Reads nobody writes are left out (``ordered`` refuses them)."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(nodes)))
    where = {id(node): i for i, node in enumerate(nodes)}
    written = writers(nodes)
    for i, node in enumerate(nodes):
        for key in node.reads:
            writer = written.get(key)
            if writer is None:
                continue
            w = where[id(writer)]
            if graph.has_edge(w, i):
                graph.edges[w, i]["keys"].append(key)
            else:
                graph.add_edge(w, i, keys=[key])
    return graph


def _cycle(graph: Any, nodes: Sequence[Node]) -> str:
    """One cycle as ``'a' reads 'x' from 'b', ...``; empty when there is none."""
    import networkx as nx

    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return ""
    parts = []
    for writer, reader in edges:
        keys = ", ".join(f"'{k}'" for k in graph.edges[writer, reader]["keys"])
        parts.append(f"'{label(nodes[reader])}' reads {keys} from '{label(nodes[writer])}'")
    return ", ".join(parts)


def generations(nodes: Sequence[N]) -> list[list[N]]:
    """Layers of tasks that could run at once: each needs only tasks of earlier layers."""
    import networkx as nx

    graph = dependency_graph(nodes)
    return [[nodes[i] for i in sorted(layer)] for layer in nx.topological_generations(graph)]


def upstream(nodes: Sequence[Node], chosen: Iterable[int]) -> set[int]:
    """Positions of the chosen tasks and of every task they need, directly or not."""
    import networkx as nx

    graph = dependency_graph(nodes)
    found: set[int] = set()
    for i in chosen:
        found |= nx.ancestors(graph, i) | {i}
    return found


def downstream(nodes: Sequence[Node], chosen: Iterable[int]) -> set[int]:
    """Positions of the chosen tasks and of every task that needs them, directly or not."""
    import networkx as nx

    graph = dependency_graph(nodes)
    found: set[int] = set()
    for i in chosen:
        found |= nx.descendants(graph, i) | {i}
    return found


def select(
    nodes: Sequence[Node],
    *,
    start: Sequence[str] = (),
    stop: Sequence[str] = (),
    only: Sequence[str] = (),
) -> set[int] | None:
    """Positions a partial run computes: ``--from`` tasks and all that need them, ``--until``
    tasks and all they need, ``--only`` tasks; together, what all of them allow. None: all."""
    if not (start or stop or only):
        return None
    chosen = set(range(len(nodes)))
    if start:
        chosen &= downstream(nodes, [_find(nodes, name, "--from") for name in start])
    if stop:
        chosen &= upstream(nodes, [_find(nodes, name, "--until") for name in stop])
    if only:
        chosen &= {_find(nodes, name, "--only") for name in only}
    if not chosen:
        raise ConfigError(
            f"--from {' '.join(start)} with --until {' '.join(stop)} selects no task: "
            f"every task --until names runs before the ones --from names"
            if not only
            else f"--only {' '.join(only)} is outside what --from/--until select"
        )
    return chosen


def _find(nodes: Sequence[Node], name: str, option: str) -> int:
    """The position of the task ``name`` (its label, or its task name when only one task
    goes by it)."""
    found = [i for i, node in enumerate(nodes) if label(node) == name]
    if not found:
        found = [i for i, node in enumerate(nodes) if node.spec.name == name]
    if len(found) == 1:
        return found[0]
    labels = [label(node) for node in nodes]
    if found:
        named = ", ".join(labels[i] for i in found)
        raise ConfigError(f"{option} {name}: several tasks go by that name ({named}); name one")
    raise ConfigError(
        f"{option} {name}: no such task{did_you_mean(name, labels)}; tasks are {', '.join(labels)}"
    )
