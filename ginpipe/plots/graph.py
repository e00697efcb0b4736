"""The picture of a pipeline: tasks as boxes (each with the keys it writes), arrows from a
writer to its readers.

The layout is networkx's: tasks in layers by topological generation
(``multipartite_layout``), data flowing left to right; a run's picture colours each task by
what happened to it (ran, cached, failed, skipped) and gives its duration. The same graph as
Mermaid text goes into docs and into every run directory (``pipeline.mmd``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import atomic_write_bytes, atomic_write_text
from ginpipe.base.errors import ConfigError

FORMATS = ("png", "svg", "mermaid")
MERMAID_SUFFIXES = (".mmd", ".mermaid", ".md")

# Box colours by status; a plan (nothing ran yet) is white.
COLOURS = {
    "ran": "#a6dba0",
    "cached": "#92c5de",
    "failed": "#f4a582",
    "skipped": "#e0e0e0",
    "": "#ffffff",
}


@dataclass
class Box:
    """One task in the picture; ``status``/``seconds`` are set for a run's graph only."""

    label: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    status: str = ""
    seconds: float | None = None
    note: str = ""

    def caption(self) -> str:
        parts = [self.status] if self.status else []
        if self.seconds is not None and self.status in ("ran", "failed"):
            parts.append(f"{self.seconds:.2f}s")
        return " ".join(parts) or self.note


@dataclass
class Picture:
    """The boxes and the arrows between them (writer -> reader, with the keys)."""

    boxes: list[Box]
    edges: dict[tuple[int, int], list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, boxes: Sequence[Box]) -> Picture:
        writer = {key: i for i, box in enumerate(boxes) for key in box.writes}
        edges: dict[tuple[int, int], list[str]] = {}
        for i, box in enumerate(boxes):
            for key in box.reads:
                if key in writer:
                    edges.setdefault((writer[key], i), []).append(key)
        return cls(list(boxes), edges)

    def layers(self) -> list[list[int]]:
        """Box positions by topological generation (a box after everything it reads); a
        box that reads nothing moves up to just before its first reader, so that a seed
        used only by the fits is drawn next to them rather than across the picture."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(range(len(self.boxes)))
        graph.add_edges_from(self.edges)
        depth = {i: d for d, layer in enumerate(nx.topological_generations(graph)) for i in layer}
        for i in graph.nodes:
            readers = [depth[j] for j in graph.successors(i)]
            if graph.in_degree(i) == 0 and readers:
                depth[i] = min(readers) - 1
        count = max(depth.values()) + 1
        return [sorted(i for i in depth if depth[i] == d) for d in range(count)]


def output_format(path: Path | None, given: str | None) -> str:
    """``--format`` if given, else the file's suffix; Mermaid text when neither says."""
    if given is not None:
        if given not in FORMATS:
            raise ConfigError(f"--format {given!r}: choose one of {', '.join(FORMATS)}")
        return given
    if path is None or path.suffix.lower() in MERMAID_SUFFIXES:
        return "mermaid"
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("png", "svg"):
        raise ConfigError(
            f"{path}: cannot tell the format from '{path.suffix}'; name a .png, .svg or .mmd "
            f"file, or pass --format png|svg|mermaid"
        )
    return suffix


def mermaid(picture: Picture) -> str:
    """A Mermaid flowchart (renders on GitHub and in most docs tools)."""
    lines = ["flowchart LR"]
    groups: dict[str, list[int]] = {}
    for i, box in enumerate(picture.boxes):
        groups.setdefault(box.label.rpartition("/")[0], []).append(i)
    for group, members in groups.items():
        indent = "        " if group else "    "
        if group:  # a nested pipeline (or scope): its tasks in one box
            lines.append(f'    subgraph ns_{group.replace("/", "_")}["{group}"]')
        for i in members:
            box = picture.boxes[i]
            caption = box.caption()
            text = f"{box.label}<br/>{caption}" if caption else box.label
            style = f":::{box.status}" if box.status else ""
            lines.append(f'{indent}t{i}["{text}"]{style}')
        if group:
            lines.append("    end")
    for (a, b), keys in picture.edges.items():
        lines.append(f"    t{a} -- {', '.join(keys)} --> t{b}")
    used = {box.status for box in picture.boxes if box.status}
    for status in sorted(used):
        lines.append(f"    classDef {status} fill:{COLOURS.get(status, '#ffffff')}")
    return "\n".join(lines) + "\n"


def figure(picture: Picture, title: str = "") -> Any:
    """The picture as a matplotlib figure (Agg, outside pyplot)."""
    import networkx as nx
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = picture.layers()
    graph = nx.DiGraph()
    for number, layer in enumerate(layers):
        graph.add_nodes_from(layer, layer=number)
    graph.add_edges_from(picture.edges)
    pos = nx.multipartite_layout(graph, subset_key="layer", align="vertical", scale=1.0)
    tallest = max(len(layer) for layer in layers)
    fig = Figure(figsize=(max(4.0, 2.4 * len(layers)), max(2.0, 1.3 * tallest + 0.8)))
    FigureCanvasAgg(fig)
    axes = fig.add_axes((0.02, 0.02, 0.96, 0.88 if title else 0.96))
    axes.set_axis_off()
    depth = {i: d for d, layer in enumerate(layers) for i in layer}
    # Arrows to the next layer are straight; longer ones bend around the boxes between.
    for (a, b), bend in _bends(picture, depth).items():
        # Arrows stop at the boxes: about half a box's width (8 pt text) from its centre.
        nx.draw_networkx_edges(
            graph,
            pos,
            edgelist=[(a, b)],
            ax=axes,
            arrows=True,
            arrowsize=12,
            edge_color="#555555",
            connectionstyle=f"arc3,rad={bend}",
            min_source_margin=_half_width(picture.boxes[a]),
            min_target_margin=_half_width(picture.boxes[b]),
        )
    for i, box in enumerate(picture.boxes):
        caption = box.caption()
        x, y = pos[i]
        # What a box writes is under its name; the arrows from it carry those keys.
        lines = [box.label, *([f"→ {', '.join(box.writes)}"] if box.writes else [])]
        axes.text(
            x,
            y,
            "\n".join([*lines, caption] if caption else lines),
            ha="center",
            va="center",
            fontsize=8,
            bbox={
                "boxstyle": "round,pad=0.4",
                "facecolor": COLOURS.get(box.status, "#ffffff"),
                "edgecolor": "#333333",
            },
        )
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    pad_x = 0.35 * (max(xs) - min(xs) or 1.0) / max(1, len(layers) - 1) + 0.1
    axes.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
    axes.set_ylim(min(ys) - 0.3, max(ys) + 0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _bends(picture: Picture, depth: dict[int, int]) -> dict[tuple[int, int], float]:
    """How much each arrow bends: none to the next layer, around the boxes when longer."""
    return {(a, b): 0.0 if depth[b] - depth[a] <= 1 else -0.25 for a, b in picture.edges}


def _half_width(box: Box) -> float:
    """Half the width of a box's text in points, roughly (8 pt characters)."""
    longest = max(len(box.label), len(", ".join(box.writes)) + 2, len(box.caption()))
    return min(2.4 * longest + 6, 90.0)


def image_bytes(picture: Picture, fmt: str, title: str = "") -> bytes:
    """The drawn picture as PNG or SVG bytes."""
    buffer = io.BytesIO()
    figure(picture, title).savefig(buffer, format=fmt, dpi=100)
    return buffer.getvalue()


def write(picture: Picture, path: Path, fmt: str, title: str = "") -> Path:
    """Write the picture atomically as PNG, SVG or Mermaid text."""
    if fmt == "mermaid":
        atomic_write_text(path, mermaid(picture))
    else:
        atomic_write_bytes(path, image_bytes(picture, fmt, title))
    return path
