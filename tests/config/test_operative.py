"""``operative.gin`` is the config that ran: gin's record plus what ginpipe built itself."""

from __future__ import annotations

from ginpipe.config import ginapi, operative
from ginpipe.config.compose import compose

CALLED = """import toytasks

# Parameters for add_up:
# ==============================================================================
add_up.scale = %SCALE

# Parameters for make_numbers:
# ==============================================================================
make_numbers.n = 4
make_numbers.start = 1
"""

BOUND = """import toytasks

# Macros:
# ==============================================================================
OTHER = 7
SCALE = %SCALE_BASE
SCALE_BASE = 2.0
WIDE = \\
    [1,
     2]

# Parameters for add_up:
# ==============================================================================
add_up.scale = %SCALE

# Parameters for make_thing:
# ==============================================================================
make_thing.value = %WIDE

# Parameters for shift:
# ==============================================================================
shift.offset = 3
"""


def test_parse_keeps_imports_macros_with_continuations_and_sections() -> None:
    parsed = operative.parse(BOUND)
    assert parsed.imports == ["import toytasks"]
    assert sorted(parsed.macros) == ["OTHER", "SCALE", "SCALE_BASE", "WIDE"]
    assert parsed.macros["WIDE"] == "WIDE = \\\n    [1,\n     2]"
    assert sorted(parsed.sections) == ["add_up", "make_thing", "shift"]
    assert operative.parse(parsed.render()) == parsed


def test_reached_configurables_gin_did_not_see_called_get_their_bound_section(
    toy_project,
) -> None:
    compose(["base.gin"])
    reached = {ginapi.find(n).selector for n in ("add_up", "make_numbers", "make_thing")}
    text = operative.complete(CALLED, BOUND, reached)
    parsed = operative.parse(text)
    # make_thing was reached but built without gin's wrapper: its bound section is added;
    # shift was not reached: nothing of it
    assert sorted(parsed.sections) == ["add_up", "make_numbers", "make_thing"]
    assert "make_thing.value = %WIDE" in text
    # every macro used is defined, through chains; unused ones are not carried
    assert sorted(parsed.macros) == ["SCALE", "SCALE_BASE", "WIDE"]


def test_merge_keeps_an_earlier_attempts_sections_and_macros() -> None:
    earlier = operative.complete(CALLED, BOUND, set())
    later = "# Parameters for report:\n# " + "=" * 78 + "\nreport.bonus = 0.0\n"
    merged = operative.parse(operative.merge(earlier, later))
    assert sorted(merged.sections) == ["add_up", "make_numbers", "report"]
    assert sorted(merged.macros) == ["SCALE", "SCALE_BASE"]
