"""What a resume (or a re-run under the same name) may do with what a run directory holds.

Three rules keep a run directory true to one experiment:

* Pinned inputs. A task declared with ``@task(pinned=True)`` (the model-fitting tasks) keeps
  results in the run directory -- checkpoints, the model -- that hold only for the inputs
  it was first given. The artifact keys of those inputs are written to ``inputs.json`` when
  the task starts (or is read from the cache); a later attempt whose plan gives the task
  other input keys (data, split, features, seed or their code changed) is refused before
  any work, naming the changed bindings. Continuing instead would train on the new data
  from a checkpoint that has seen the new test rows (the leak of docs/state-keys.md's
  ``model`` key being cached under the wrong inputs).
* A completed run resumed with the same config is left exactly as it is.
* ``operative.gin`` keeps the sections of configurables a later attempt did not call
  (they were read from the cache), so it always describes everything the results used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ginpipe.base.atomic import atomic_write_json, atomic_write_text
from ginpipe.base.errors import RunDirError
from ginpipe.config import operative
from ginpipe.core.events import Observer, TaskEvent
from ginpipe.core.plan import PlannedStep
from ginpipe.runs import rundir

INPUTS = "inputs.json"


def is_pinned(step: PlannedStep) -> bool:
    return bool(step.spec.caching.pinned)


def recorded_inputs(run: rundir.RunDir) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(run.file(INPUTS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_pinned_inputs(
    run: rundir.RunDir, steps: Sequence[PlannedStep], bindings: str, mods: Sequence[str] = ()
) -> None:
    """Refuse an attempt that would give a pinned task other inputs than it had here."""
    recorded = recorded_inputs(run)
    for step in steps:
        before = recorded.get(step.spec.name)
        if before is None or not is_pinned(step) or before == step.inputs:
            continue
        changed = changed_bindings(run, bindings, upstream_names(steps, step))
        what = "; ".join(changed) if changed else "no binding: the code or library versions"
        again = " ".join(f"--mod {m!r}" for m in mods)
        raise RunDirError(
            f"refused: this config changes the inputs of '{step.spec.name}' ({what}), but "
            f"{run.path} holds its results for the old inputs, and continuing would mix "
            f"them. Start a new run instead: ginpipe run {run.file(rundir.CONFIG)} "
            f"{again + ' ' if again else ''}--name NEW_NAME"
        )


def upstream_names(steps: Sequence[PlannedStep], target: PlannedStep) -> set[str]:
    """Names of the tasks whose outputs reach ``target``, directly or through others."""
    needed = set(target.spec.reads)
    names: set[str] = set()
    for step in reversed([s for s in steps if s.index < target.index]):
        if needed & set(step.spec.writes):
            names.add(step.spec.name)
            needed |= set(step.spec.reads)
    return names


def changed_bindings(run: rundir.RunDir, bindings: str, tasks: set[str]) -> list[str]:
    """``key: old -> new`` for bindings that differ from the saved ``resolved.gin``, those
    of ``tasks`` (and macros) first; every difference if none of them changed."""
    path = run.file(rundir.RESOLVED)
    old = _binding_values(path.read_text() if path.is_file() else "")
    new = _binding_values(bindings)
    changes = [
        (key, f"{key}: {old.get(key, '(unset)')} -> {new.get(key, '(unset)')}")
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    relevant = [text for key, text in changes if key.split(".")[0].split("/")[-1] in tasks]
    return relevant or [text for _, text in changes]


def _binding_values(text: str) -> dict[str, str]:
    """``key -> value`` of gin's canonical binding text (continuation lines joined)."""
    values: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", "import ")):
            key = None
            continue
        if key is not None and line[:1].isspace():
            values[key] = f"{values[key]} {line.strip()}".replace("\\ ", "").strip()
            continue
        if "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            values[key] = value.rstrip("\\").strip()
    return {k: " ".join(v.split()) for k, v in values.items()}


class InputsRecorder(Observer):
    """Writes the input keys of each pinned task to ``inputs.json`` when it starts."""

    def __init__(self, run: rundir.RunDir, steps: Sequence[PlannedStep]) -> None:
        self.run = run
        self.steps = {step.index: step for step in steps if is_pinned(step)}

    def on_task_start(self, event: TaskEvent) -> None:
        step = self.steps.get(event.index)
        if step is None:
            return
        recorded = recorded_inputs(self.run)
        if recorded.get(step.spec.name) != step.inputs:
            recorded[step.spec.name] = dict(step.inputs)
            atomic_write_json(self.run.file(INPUTS), recorded)


def is_complete(run: rundir.RunDir, digest: str) -> bool:
    """A completed run whose saved config is the one given: nothing is left to do."""
    record = run.read_json()
    return record.get("status") == "completed" and record.get("config_digest") == digest


def write_operative(
    run: rundir.RunDir, text: str, unused: dict[str, set[str]] | None = None
) -> None:
    """Write ``operative.gin``, keeping earlier sections this attempt did not produce and
    leaving out the parameters tasks said they did not use."""
    path = run.file(rundir.OPERATIVE)
    previous = path.read_text() if path.is_file() else ""
    atomic_write_text(path, operative.drop_unused(operative.merge(previous, text), unused or {}))
