"""Environment lock: what writing ``RUN/environment.txt`` costs at every run start, next to
the plain ``name==version`` list it replaced (``benchmarks/baselines/environment_list.py``).

Each variant runs in a fresh child process that imports what a run has imported by then
(ginpipe's runner), then times one call: the first call of a process is what a run pays.
Rounds alternate the two variants. The lock reads only local files (distribution metadata,
pip's config files, ginpipe's source for its digest) and calls ``git status`` once; no
network, no pip.

    python -m benchmarks.environment_lock --repeats 9
"""

from __future__ import annotations

import argparse
import json
import subprocess

from benchmarks.common import (
    PYTHON,
    child_env,
    log,
    markdown_table,
    paired_ratios,
    summarize,
    wait_for_quiet,
)

PROBE = """
import json, time
import ginpipe.runs.runner
{setup}
start = time.perf_counter()
text = {call}
print(json.dumps({{"ms": (time.perf_counter() - start) * 1000, "lines": text.count(chr(10))}}))
"""
VARIANTS = {
    "plain list (before)": (
        "from benchmarks.baselines.environment_list import installed_distributions",
        "installed_distributions()",
    ),
    "environment lock": (
        "from ginpipe.runs.provenance import environment_lock",
        "environment_lock()",
    ),
}


def measure(setup: str, call: str) -> dict[str, float]:
    done = subprocess.run(
        [PYTHON, "-c", PROBE.format(setup=setup, call=call)],
        env=child_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    repeats = parser.parse_args().repeats
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    lines: dict[str, float] = {}
    for round_ in range(repeats):
        wait_for_quiet(10)
        order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            found = measure(*VARIANTS[name])
            times[name].append(found["ms"])
            lines[name] = found["lines"]
        log(
            f"round {round_ + 1}/{repeats}: "
            + ", ".join(f"{n} {t[-1]:.1f} ms" for n, t in times.items())
        )
    before, after = times["plain list (before)"], times["environment lock"]
    rows = [[name, summarize(times[name]).fmt(1, " ms"), int(lines[name])] for name in VARIANTS]
    print(markdown_table(["written at each run start", "first call in a process", "lines"], rows))
    ratio = paired_ratios(after, before)
    extra = summarize([a - b for a, b in zip(after, before, strict=True)])
    print(f"\nratio lock / plain list: {ratio.fmt(2)}; extra per run start: {extra.fmt(1, ' ms')}")


if __name__ == "__main__":
    main()
