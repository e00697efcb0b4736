"""Helpers every benchmark shares: run a child process and measure it, interleave variants,
summarize repetitions, describe the machine, and render Markdown.

Every measured variant runs as a fresh child process, so each figure includes the
interpreter start and the imports a user pays for, and the peak RSS of one child is not
mixed up with the next. Peak RSS comes from ``os.wait4`` (the kernel's ``ru_maxrss`` of
that child and its waited-for descendants), so no extra dependency is needed.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from ginpipe.runs.distributed import LAUNCHER_VARIABLES

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "benchmarks"
CONFIGS = BENCH_DIR / "configs"
WORK = BENCH_DIR / "_work"  # gitignored: generated data, temporary roots, profiles
PYTHON = sys.executable
GINPIPE = str(Path(sys.executable).with_name("ginpipe"))
BASE_CONFIGS = ("base", "models/resnet")

T = TypeVar("T")
POLL_S = 0.02  # how often run_measured checks its kill condition
# The machine may be shared. Other processes' CPU use (in cores, averaged over a child's
# run) above DISTURBED_CORES marks a round as disturbed and it is run again; before each
# round we wait (up to QUIET_WAIT_S) until they use less than QUIET_CORES.
DISTURBED_CORES = 0.3
MIN_DISTURBANCE_S = 0.3  # CPU seconds; less is noise (our launcher, kernel threads)
QUIET_CORES = 0.2
QUIET_WAIT_S = 60.0
_interference: list[float] = []  # background cores of every measured child, in order


def log(message: str) -> None:
    """Progress on stderr, so a long ``make bench`` shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every child: the repository importable (benchmark configs import
    ``benchmarks.bench_tasks``), no launcher variables, no progress bars."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# -- measuring one child process -----------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat; 0 elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(limit: float = QUIET_WAIT_S) -> float:
    """Wait until other processes use less than QUIET_CORES (sampled over 1 s), at most
    ``limit`` seconds; returns the seconds waited beyond the first sample."""
    waited = 0.0
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        if machine_busy_seconds() - before < QUIET_CORES or waited >= limit:
            return waited
        waited += 1.0


@dataclass
class Measurement:
    """One child process: wall seconds, peak RSS in MiB, exit status and its output."""

    wall: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    killed: bool = False
    started: float = 0.0  # time.time() just before the child was forked
    cpu_s: float = 0.0  # user + system CPU seconds of the child and its workers
    background_cores: float = 0.0  # other processes' average CPU use meanwhile, in cores

    def check(self, what: str) -> Measurement:
        """Fail loudly: a benchmark of a crashed run measures nothing."""
        if self.returncode != 0 and not self.killed:
            tail = "\n".join(self.stderr.strip().splitlines()[-25:])
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{tail}")
        return self

    def last_json_line(self) -> dict[str, Any]:
        """The last stdout line that parses as a JSON object (how our child scripts report)."""
        for line in reversed(self.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    return json.loads(line)
        raise ValueError(f"no JSON line in the child's output:\n{self.stdout[-2000:]}")


# The child is started through this small launcher. On Linux a process's peak RSS starts
# at the peak of the process that exec'd it (subprocess uses vfork, so that would be this
# orchestrator, which may have grown); the launcher is tiny, forks the command itself and
# reports its wall time, start time and rusage from os.wait4.
LAUNCHER = """
import json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
started, start = time.time(), time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as f:
    json.dump({"wall": wall, "started": started, "status": status,
               "maxrss_kib": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, f)
"""


def run_measured(
    cmd: Sequence[str],
    *,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800.0,
    kill_when: Callable[[], bool] | None = None,
) -> Measurement:
    """Run ``cmd`` to completion (or SIGKILL it once ``kill_when()`` is true, polled every
    few milliseconds) and measure its wall time and peak RSS.

    Output goes to temporary files so a chatty child never blocks on a full pipe. The child
    runs in its own session; a kill goes to the whole group (its workers included).
    """
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        report = Path(scratch) / "report.json"
        busy_before = machine_busy_seconds()
        start = time.perf_counter()
        proc = subprocess.Popen(
            [PYTHON, "-S", "-c", LAUNCHER, str(report), *cmd],
            cwd=cwd,
            env=dict(env or child_env()),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        done = threading.Event()
        killed = threading.Event()
        timed_out = threading.Event()

        def watch() -> None:
            while not done.wait(POLL_S):
                over_time = time.perf_counter() - start > timeout
                if over_time or (kill_when is not None and kill_when()):
                    (timed_out if over_time else killed).set()
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            proc.wait()
        finally:
            done.set()
            watcher.join()
        elapsed = time.perf_counter() - start
        busy = machine_busy_seconds() - busy_before
        if timed_out.is_set():
            raise TimeoutError(f"{' '.join(cmd)} ran longer than {timeout:.0f} s")
        out.seek(0)
        err.seek(0)
        measurement = Measurement(
            wall=elapsed,
            max_rss_mb=0.0,
            returncode=proc.returncode,
            stdout=out.read(),
            stderr=err.read(),
            killed=killed.is_set(),
        )
        if report.is_file():  # absent when the launcher was killed with its child
            child = json.loads(report.read_text())
            measurement.wall = child["wall"]
            measurement.started = child["started"]
            measurement.max_rss_mb = child["maxrss_kib"] / 1024  # Linux reports KiB
            measurement.returncode = os.waitstatus_to_exitcode(child["status"])
            measurement.cpu_s = child["cpu"]
            other = max(0.0, busy - child["cpu"])
            measurement.background_cores = other / elapsed
            # Short children cannot tell a neighbour from our own launcher: count only
            # interference of some size.
            _interference.append(measurement.background_cores if other > MIN_DISTURBANCE_S else 0.0)
        return measurement


def ginpipe_cmd(*args: str) -> list[str]:
    """The installed console script, exactly what a user types."""
    return [GINPIPE, *args]


@contextlib.contextmanager
def fresh_dir(prefix: str) -> Iterator[Path]:
    """An empty folder under ``_work/tmp`` (same disk as a project's ``experiments/``),
    removed afterwards whatever happens."""
    parent = WORK / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def find_run_dir(root: Path, name: str) -> Path:
    """ROOT/PROJECT/NAME of a run started with ``--root ROOT --name NAME`` (the project
    defaults to the name of the working directory)."""
    found = sorted(root.glob(f"*/{name}"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one run named {name!r} under {root}, found {found}")
    return found[0]


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def task_seconds(record: Mapping[str, Any]) -> dict[str, float]:
    """Seconds per task as the run recorded them (0 for tasks read from the cache)."""
    return {task["name"]: float(task["seconds"]) for task in record.get("tasks", [])}


# -- repetitions -----------------------------------------------------------------------------


class Rounds(dict):
    """Results per variant (``name -> list``), plus how quiet the machine was meanwhile."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__({name: [] for name in names})
        self.interference: list[float] = []  # per kept round: the worst child's, in cores
        self.redone = 0
        self.waited = 0.0

    def describe(self) -> str:
        """One sentence for the report: was this measured on a quiet machine?"""
        if not self.interference:
            return ""
        worst = summarize(self.interference)
        text = (
            "Other processes' CPU use while our children ran (the worst child of each round): "
            f"median {worst.median:.2f} cores, max {worst.high:.2f}"
        )
        if self.redone:
            text += f"; {self.redone} disturbed round(s) were run again"
        if self.waited:
            text += f"; {self.waited:.0f} s spent waiting for a quiet machine"
        return text + "."


def quiet_note(results: Mapping[str, Any]) -> str:
    """``Rounds.describe()`` for results that came from ``interleave``."""
    return results.describe() if isinstance(results, Rounds) else ""


def interleave(
    variants: Mapping[str, Callable[[int], T]],
    repeats: int,
    warmup: int = 0,
    max_redos: int | None = None,
) -> Rounds:
    """Run the variants in turn, A B A B ..., so slow drift (thermal, caches, neighbours)
    hits all of them alike. ``warmup`` rounds run first and are discarded. A round during
    which other processes took a real share of the CPU is run again (at most
    ``max_redos`` times in all, default ``repeats``)."""
    results = Rounds(list(variants))
    max_redos = repeats if max_redos is None else max_redos
    round_index = -warmup
    while round_index < repeats:
        results.waited += wait_for_quiet()
        mark = len(_interference)
        values = {}
        for name, variant in variants.items():
            label = "warm-up" if round_index < 0 else f"{round_index + 1}/{repeats}"
            log(f"  {name} ({label})")
            values[name] = variant(round_index)
        worst = max(_interference[mark:], default=0.0)
        if round_index >= 0 and worst > DISTURBED_CORES and results.redone < max_redos:
            results.redone += 1
            log(f"  round disturbed (other processes used {worst:.2f} cores): running it again")
            continue
        if round_index >= 0:
            for name, value in values.items():
                results[name].append(value)
            results.interference.append(worst)
        round_index += 1
    return results


@dataclass(frozen=True)
class Summary:
    """Median and range over the repetitions."""

    median: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        return (
            f"{self.median:.{digits}f}{unit} "
            f"({self.low:.{digits}f}-{self.high:.{digits}f}, n={self.n})"
        )


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("nothing to summarize")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """Ratios of the i-th repetitions (measured next to each other), summarized."""
    return summarize([a / b for a, b in zip(numerators, denominators, strict=True)])


# -- reporting -------------------------------------------------------------------------------


@dataclass
class Target:
    """A goal a figure should meet, e.g. wall ratio <= 1.05."""

    description: str
    value: float
    limit: float
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def row(self) -> list[str]:
        op = ">=" if self.higher_is_better else "<="
        return [
            self.description,
            f"{self.value:.3g}",
            f"{op} {self.limit:g}",
            "met" if self.met else "**missed**",
        ]


@dataclass
class BenchResult:
    """What one benchmark hands to ``run_all``: Markdown body, targets, and what to profile
    when a target is missed."""

    key: str
    title: str
    body: str
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Called by run_all when a target is missed: returns a profile of the slow part.
    profile: Callable[[], str] | None = None

    @property
    def missed(self) -> list[Target]:
        return [t for t in self.targets if not t.met]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _proc_field(path: str, key: str) -> str:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    return "unknown"


def machine_info() -> dict[str, str]:
    """What the figures depend on: cores, memory, CPU, library versions, date."""
    mem_kib = _proc_field("/proc/meminfo", "MemTotal").split()[0]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _proc_field("/proc/cpuinfo", "model name"),
        "cores": f"{usable} usable ({os.cpu_count()} online)",
        "memory": f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else mem_kib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "pytorch-lightning": _version("pytorch-lightning"),
        "scikit-learn": _version("scikit-learn"),
        "numpy": _version("numpy"),
        "pillow": _version("pillow"),
        "ginpipe": _version("ginpipe"),
    }


# -- profiling -------------------------------------------------------------------------------


def have_pyinstrument() -> bool:
    return importlib.util.find_spec("pyinstrument") is not None


def profile_top(
    python_args: Sequence[str],
    *,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    collapse: Sequence[str] = (),
    lines: int = 40,
    threshold: float = 0.01,
) -> str:
    """Where ``python <python_args>`` spends its time, from a pyinstrument profile.

    A condensed call tree: project frames plus the first library frame under each, above
    ``threshold`` of the total; frames that only pass (nearly) all their time on to one
    child are left out, so the lines are the places where time splits. Frames named in
    ``collapse`` (e.g. ``Trainer.fit``, work both variants share) are not expanded.
    Returns an empty string if pyinstrument is not installed.
    """
    if not have_pyinstrument():
        return ""
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / "profile.pyisession"
    cmd = [PYTHON, "-m", "pyinstrument", "-r", "pyisession", "-o", str(out), *python_args]
    result = subprocess.run(cmd, cwd=cwd, env=dict(env or child_env()), capture_output=True)
    if not out.exists():
        return f"(profile failed: {result.stderr.decode(errors='replace')[-500:]})"
    # pyinstrument's own clean-up (import machinery folded into the imported module's
    # frame, repeated calls merged), without hiding library code.
    root = ConsoleRenderer(show_all=True).preprocess(Session.load(out).root_frame())
    out.unlink()
    if root is None:
        return "(empty profile)"
    total = root.time
    rendered: list[str] = []

    def label(frame: Any) -> str:
        owner = f"{frame.class_name}." if frame.class_name else ""
        return f"{owner}{frame.function}"

    def visit(frame: Any, depth: int, parent_is_app: bool) -> None:
        if frame.time < threshold * total:
            return
        name = label(frame)
        shown = frame.is_application_code or parent_is_app
        big_children = [c for c in frame.children if c.time >= threshold * total]
        passes_through = len(big_children) == 1 and big_children[0].time >= 0.97 * frame.time
        collapsed = name in collapse
        # Import machinery: show the module being imported, not importlib's frames.
        transparent = (frame.file_path or "").startswith("<frozen importlib")
        printed = shown and not transparent and (collapsed or not passes_through)
        if printed:
            note = "  (not expanded)" if collapsed else ""
            rendered.append(
                f"{'  ' * depth}{frame.time:7.2f} s {100 * frame.time / total:5.1f}%  "
                f"{name}  {frame.file_path_short}:{frame.line_no}{note}"
            )
            depth += 1
        if collapsed:
            return
        # A frame skipped only because it passes its time on lends its place to its child.
        child_eligible = frame.is_application_code or (shown and not printed)
        for child in sorted(frame.children, key=lambda c: c.time, reverse=True):
            visit(child, depth, child_eligible)

    visit(root, 0, True)
    header = f"total {total:.2f} s; frames above {threshold:.1%} of it"
    return "\n".join([header, *rendered[:lines]])
