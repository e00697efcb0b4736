"""``extract_features`` as a job array of 2 through submitit's local executor, against the
in-process pool of 2 workers, on the same WAV files.

Both variants are fresh ``ginpipe run`` processes (load_table -> split_dataset ->
extract_features, log-mel as configs/data/audio.gin computes it) in a fresh root, so every
item is computed; they run in alternating order. The array variant sends the task with
``executors.tasks = {'extract_features': 'local'}`` and ``executors.array = 2``: each job
starts its own interpreter, composes the run's config, computes its share of the shards
with one worker, and the run then gathers them (ginpipe/core/jobs.py). What the
ratio shows is the price of those job starts against the pool's forked workers.

    python -m benchmarks.graph_slurm --repeats 3 [--files 2000]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks.common import (
    find_run_dir,
    fresh_dir,
    ginpipe_cmd,
    log,
    machine_info,
    markdown_table,
    paired_ratios,
    read_run_json,
    run_measured,
    summarize,
    task_seconds,
)
from benchmarks.feature_extraction import ensure_audio, subset

CONFIG = """\
import ginpipe.tasks.load
import ginpipe.tasks.split
import ginpipe.tasks.extract

run.tasks = [@load_table, @split_dataset, @extract_features]
load_table.path = '{labels}'
load_table.extra_columns = ['group']
load_table.decoder = @audio_decoder()
audio_decoder.sample_rate = 16000
audio_decoder.mono = True
audio_decoder.duration = 1.0
split_dataset.method = 'group'
split_dataset.column = 'group'
extract_features.function = @log_mel()
extract_features.shard_size = 256
extract_features.progress = False
log_mel.sample_rate = 16000
log_mel.n_fft = 512
log_mel.hop_length = 512
log_mel.n_mels = 40
"""
VARIANTS = {
    "pool": "extract_features.workers = 2\n",
    "array": (
        "extract_features.workers = 1\n"
        "executors.tasks = {'extract_features': 'local'}\n"
        "executors.array = {'extract_features': 2}\n"
    ),
}


def one_run(variant: str, labels: Path) -> tuple[float, float]:
    """Wall seconds of the whole run, and extract_features' seconds as recorded."""
    with fresh_dir("graph-slurm-") as root:
        config = root / f"{variant}.gin"
        config.write_text(CONFIG.format(labels=labels) + VARIANTS[variant])
        cmd = ginpipe_cmd("run", str(config), "--root", str(root), "--name", "b")
        measurement = run_measured(cmd, cwd=root).check(f"ginpipe run ({variant})")
        record = read_run_json(find_run_dir(root, "b"))
        if variant == "array":
            task = next(t for t in record["tasks"] if t["name"] == "extract_features")
            assert task.get("executor") == "local" and len(task["jobs"]) == 2, task
        return measurement.wall, task_seconds(record)["extract_features"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    labels = subset(ensure_audio(args.files), args.files)
    load_start = os.getloadavg()
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    extracts: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_index in range(args.repeats):
        order = list(VARIANTS) if round_index % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            log(f"  {variant} ({round_index + 1}/{args.repeats})")
            wall, extract = one_run(variant, labels)
            walls[variant].append(wall)
            extracts[variant].append(extract)
    load_end = os.getloadavg()
    info = machine_info()
    rows = [
        [
            "run wall s",
            summarize(walls["pool"]).fmt(),
            summarize(walls["array"]).fmt(),
            paired_ratios(walls["array"], walls["pool"]).fmt(3),
        ],
        [
            "extract_features s (as recorded)",
            summarize(extracts["pool"]).fmt(),
            summarize(extracts["array"]).fmt(),
            paired_ratios(extracts["array"], extracts["pool"]).fmt(3),
        ],
    ]
    print(f"machine: {info['cpu']}, {info['cores']}, {info['date']}")
    print(f"load average at start / end (1 min): {load_start[0]:.2f} / {load_end[0]:.2f}")
    print(f"{args.files} WAV files (1 s, 16 kHz), log-mel 40 x 32, shards of 256\n")
    headers = ["", "in-process pool (2 workers)", "submitit local array (2 jobs)", "ratio"]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
