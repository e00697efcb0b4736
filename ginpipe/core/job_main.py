"""What a submitted job does in its own process: one step of a run, in the run's directory.

The job composes the run's ``config.gin``, plans it against the run root's cache, checks
that its step has the cache key the run planned (else the config changed under it), brings
in what the step reads (stored inputs read lazily; what was never stored -- seeding, a
``cache=False`` task -- computed again), runs the step with its share of the work when it
is an element of a job array, and stores its outputs in the artifact store, as a forked
``--jobs`` process does. It answers with names only: what it stored, and the parameters the
task did not use.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from ginpipe.base.errors import GinpipeError
from ginpipe.base.workdir import work_in
from ginpipe.config import ginapi
from ginpipe.core.events import Events
from ginpipe.core.graph import dependencies
from ginpipe.core.pipeline import Pipeline, describe
from ginpipe.core.plan import Action, PlannedStep
from ginpipe.core.shares import Share
from ginpipe.core.state import RunContext
from ginpipe.core.store import CACHE_DIR, ArtifactStore


@dataclass(frozen=True)
class StepJob:
    """What submitit runs: one step of a run, in the run's directory (plain strings only)."""

    run_dir: str
    root: str
    name: str
    project: str
    cwd: str
    step: str
    key: str

    def __call__(self, index: int, count: int) -> dict[str, Any]:
        try:
            return self._run(Share(index, count) if count else None)
        except BaseException as raised:
            error = ginapi.unwrap_call_error(raised)
            traceback.print_exc()
            code = error.exit_code if isinstance(error, GinpipeError) else 1
            return {"status": "error", "error": describe(error), "code": code}

    def _run(self, share: Share | None) -> dict[str, Any]:
        from ginpipe.config.compose import bind_run_macros, compose_text
        from ginpipe.config.settings import run_settings
        from ginpipe.core.plan import plan
        from ginpipe.core.steps import task_steps

        work_in(self.cwd)  # the project's own modules, as the run imported them
        config = Path(self.run_dir) / "config.gin"
        compose_text(config.read_text(), str(config))
        bind_run_macros(Path(self.run_dir))
        store = ArtifactStore(Path(self.root) / CACHE_DIR)
        steps = plan(task_steps(run_settings().tasks), store)
        step = next((s for s in steps if s.name == self.step), None)
        if step is None or step.key != self.key:
            raise GinpipeError(
                f"{config} does not plan task '{self.step}' with the cache key the run did: "
                f"the config changed since the job was submitted (resume the run to submit "
                f"it again), or the run took inputs --inputs-from another run, which a job "
                f"cannot follow"
            )
        context = RunContext(Path(self.run_dir), self.name, self.project, root=Path(self.root))
        pipeline = Pipeline(steps, store=store, run=context, events=Events([]))
        for earlier in _upstream(steps, step):
            if earlier.action == Action.CACHED:
                pipeline.expose(earlier)
            elif earlier.action == Action.RUN:
                pipeline.run_here(earlier)  # never stored (seeding, cache=False): again
        pipeline.gather(step)
        part = f" (share {share.index + 1} of {share.count})" if share else ""
        logger.info(f"{step.name}: running{part}")
        outputs = pipeline.call(step, share)
        unused = sorted(pipeline.state.unused.get(step.spec.name, set()))
        if share is not None:  # an array element: its work is cached by the task
            return {"status": "ok", "stored": [], "unused": unused}
        stored = pipeline.store_outputs(step, outputs)
        return {"status": "ok", "stored": list(stored), "unused": unused}


def _upstream(steps: Sequence[PlannedStep], step: PlannedStep) -> list[PlannedStep]:
    """The steps ``step`` waits for, directly or not, in the order they run."""
    needs = dependencies(steps)
    wanted: set[int] = set()
    todo = list(needs[step.index])
    while todo:
        index = todo.pop()
        if index not in wanted:
            wanted.add(index)
            todo += needs[index]
    return [s for s in steps if s.index in wanted]
