"""One trial in its own process: ``python -m ginpipe.sweep.trial SWEEP_DIR NUMBER VALUES``.

A trial on several devices trains under DDP, and Lightning starts the other ranks by running
the command line of the process again: so that command must be the trial, not the sweep.
The worker that holds the trial starts this process and waits for it; global rank 0 reports
each validation epoch to the study (pruning), every rank takes part in its decision, and the
worker tells the study how the trial ended, from the trial's ``run.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import optuna

from ginpipe import api
from ginpipe.base.errors import EXIT_OK, GinpipeError, TaskFailed
from ginpipe.runs import distributed, startup
from ginpipe.runs.rundir import CONFIG
from ginpipe.sweep import definition
from ginpipe.sweep.definition import Sweep, trial_name
from ginpipe.sweep.pruning import CALLBACK_MOD, TrialReport
from ginpipe.sweep.study import open_study


def command(sweep: Sweep, number: int, values: dict[str, str]) -> list[str]:
    """The command line of trial ``number`` with its swept ``values``."""
    return [
        sys.executable,
        "-m",
        "ginpipe.sweep.trial",
        str(sweep.dir),
        str(number),
        json.dumps(values, sort_keys=True),
    ]


def reporting_trial(sweep: Sweep, number: int) -> optuna.Trial:
    """Trial ``number`` of the sweep's study, to report intermediate values to."""
    study = open_study(sweep)
    for frozen in study.get_trials(deepcopy=False):
        if frozen.number == number:
            return optuna.Trial(study, frozen._trial_id)
    raise GinpipeError(f"{sweep.dir}: the study has no trial {number}")


def start_or_resume(
    sweep: Sweep, number: int, values: dict[str, str], report: TrialReport | None = None
) -> Any:
    """Trial ``number`` as a run in this process: resumed in its own folder if a dead
    worker left it started, else started with its swept values. ``report``: the trial the
    pruning callback reports to, attached to the run."""
    path = sweep.trial_dir(number)
    attached = [report] if report is not None else []
    if (path / CONFIG).is_file():
        return api.resume(path, attached=attached)
    mods = sweep.space.mods(values) + ([CALLBACK_MOD] if sweep.prune else [])
    return api.run(
        sweep.space.configs,
        mods,
        root=sweep.root,
        project=sweep.project,
        group=sweep.dir.name,
        name=trial_name(number),
        use_cache=sweep.use_cache,
        attached=attached,
    )


def run_trial(sweep_dir: Path, number: int, values: dict[str, str]) -> int:
    """Run (or resume) the trial in this process; its exit code."""
    sweep = definition.load(sweep_dir)
    reports = sweep.prune and distributed.detect().is_main
    trial = reporting_trial(sweep, number) if reports else None
    report = TrialReport(trial, sweep.direction, all_ranks=sweep.prune)
    run = start_or_resume(sweep, number, values, report)
    code = run.record.get("exit_code")
    return int(code) if isinstance(code, int) else EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """``python -m ginpipe.sweep.trial SWEEP_DIR NUMBER VALUES``, on every rank of the trial."""
    args = sys.argv[1:] if argv is None else argv
    code = startup.process_main(
        lambda: run_trial(Path(args[0]), int(args[1]), json.loads(args[2])),
        console_rank=distributed.detect().rank,
        reported=(GinpipeError, TaskFailed),  # recorded in the trial's run.json as well
    )
    sys.exit(code)


if __name__ == "__main__":
    main()
