"""The collector is paused while the console script composes its config, then what was
imported is frozen; ginpipe used as a library leaves the collector alone."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ginpipe.runs import startup

TOYTASKS = Path(__file__).resolve().parents[1] / "toy"


@pytest.fixture
def fresh_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process that has not started up yet; the test process's collector is restored."""
    monkeypatch.setattr(startup, "_owned", False)
    monkeypatch.setattr(startup, "_done", False)
    yield
    gc.unfreeze()
    gc.enable()


def test_a_library_caller_keeps_its_collector(fresh_start: None) -> None:
    frozen = gc.get_freeze_count()
    with startup.importing():
        assert gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_an_owned_process_freezes_its_first_composition_only(fresh_start: None) -> None:
    startup.own_process()
    with startup.importing():
        assert not gc.isenabled()
        made_while_importing = [[] for _ in range(100)]
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    assert frozen >= len(made_while_importing)

    with startup.importing():  # a later run of the same process (a sweep worker)
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_failed_composition_still_turns_the_collector_back_on(fresh_start: None) -> None:
    startup.own_process()
    with pytest.raises(ValueError), startup.importing():
        raise ValueError("bad config")
    assert gc.isenabled()


def test_the_console_script_composes_with_the_collector_paused(tmp_path: Path) -> None:
    (tmp_path / "toy.gin").write_text(
        textwrap.dedent(
            """
            import toytasks
            run.tasks = [@make_numbers, @add_up, @report]
            """
        )
    )
    probe = textwrap.dedent(
        """
        import gc, sys
        from ginpipe import cli
        from ginpipe.config import compose as config

        compose = config.compose
        def observed(*args, **kwargs):
            print("collector during composition:", gc.isenabled())
            return compose(*args, **kwargs)
        config.compose = observed
        import ginpipe.runs.runner
        ginpipe.runs.runner.compose = observed
        try:
            cli.main(["config", "toy.gin"])
        except SystemExit as exit:
            print("exit:", exit.code)
        print("frozen:", gc.get_freeze_count() > 0, "collector after:", gc.isenabled())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(TOYTASKS), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert "collector during composition: False" in result.stdout, result.stderr
    assert "exit: 0" in result.stdout, result.stderr
    assert "frozen: True collector after: True" in result.stdout


def test_a_ctrl_c_after_the_work_ends_the_process_quietly() -> None:
    """Exit hooks (torch's, multiprocessing's) run after ``main``: a Ctrl-C there printed a
    KeyboardInterrupt traceback from an atexit hook."""
    probe = textwrap.dedent(
        """
        import atexit, os, signal, time
        from ginpipe.runs.startup import process_main

        def slow_exit_hook():
            os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, during the exit hooks
            time.sleep(5)

        atexit.register(slow_exit_hook)
        process_main(lambda: print("done", flush=True), interrupted_exit=130)
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "done"
    assert result.returncode == 130
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr
