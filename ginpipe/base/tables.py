"""Tables the commands print (``runs``, ``runs --sweep``, ``cache ls``, ``configs``): one
formatter, built on rich, for every layer.

Plain columns, no borders: output that scripts and tests read stays text split by spaces.
Colour (a bold header) only on a terminal; never wrapped or cut, however long a value is.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence

# Wide enough that no column is ever wrapped or truncated to fit a console.
_WIDTH = 100_000


def render_table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """``rows`` (and ``header`` above them) as left-aligned columns two spaces apart, each
    line without trailing spaces. Cells are text: ``[...]`` in a value is never markup."""
    # rich is imported here, not at module level: `ginpipe --help` stays fast.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    terminal = sys.stdout.isatty()
    table = Table(
        box=None,
        show_header=header is not None,
        header_style="bold" if terminal else "",
        pad_edge=False,
        padding=(0, 1),  # one space each side of a cell: columns two spaces apart
    )
    for name in header if header is not None else [""] * _columns(rows):
        table.add_column(Text(str(name)), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    out = io.StringIO()
    console = Console(
        file=out,
        width=_WIDTH,
        force_terminal=terminal,
        no_color=None if terminal else True,  # None: rich honours NO_COLOR
        color_system="auto" if terminal else None,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def _columns(rows: Sequence[Sequence[str]]) -> int:
    return max((len(row) for row in rows), default=0)
