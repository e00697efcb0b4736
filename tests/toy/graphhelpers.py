"""Helpers shared by the graph tests."""

from __future__ import annotations

from ginpipe.config.compose import compose_text
from ginpipe.config.settings import run_settings
from ginpipe.core.plan import PlannedStep, plan
from ginpipe.core.steps import task_steps


def plan_of(text: str, mods: tuple[str, ...] = ()) -> list[PlannedStep]:
    """The planned steps of a config text, in the order they would run (no store)."""
    compose_text(text, "<test>", mods)
    return plan(task_steps(run_settings().tasks), None)
