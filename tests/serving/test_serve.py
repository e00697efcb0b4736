"""``ginpipe serve`` as a user runs it: the real console script in a temporary folder,
serving two tiny trained runs (digits features, audio files) on 127.0.0.1, called with
httpx. Concurrent requests are batched and answer what ``ginpipe predict`` writes for the
same inputs (up to float32 rounding); bad input is a 4xx of one JSON line and the server
goes on; SIGTERM answers the requests already accepted before the process ends; a missing
run or a busy port is one line before any model loads.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import LAUNCHER_VARIABLES

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
FAST = str(CONFIGS / "debug" / "fast.gin")
DIGITS = [str(CONFIGS / "base.gin"), str(CONFIGS / "models" / "resnet.gin"), FAST]
SMALL = ["ResNet.width=8", "ResNet.blocks_per_stage=[1]"]
AUDIO_GIN = f"""\
include '{CONFIGS / "base.gin"}'
include '{CONFIGS / "data" / "audio.gin"}'
include '{CONFIGS / "models" / "audio_cnn.gin"}'
include '{FAST}'
load_table.path = 'data/labels.csv'
audio_decoder.sample_rate = 8000
audio_decoder.duration = 0.25
log_mel.sample_rate = 8000
log_mel.n_fft = 256
log_mel.hop_length = 128
extract_features.workers = 1
fit.num_workers = 0
"""
AUDIO_ITEMS = 40
READY = re.compile(r"serving .* at (http://\S+/) ")
IN_FLIGHT = "ginpipe_requests_in_flight"
PROB_TOLERANCE = 1e-6
WAIT_S = 120.0  # the longest a test waits for the server to start or stop


def ginpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("ginpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ginpipe.cli"]


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}


def ginpipe(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*ginpipe_command(), *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done


@dataclass
class Runs:
    folder: Path
    digits: Path
    audio: Path
    rows: np.ndarray  # digits rows, (n, 64)
    rows_csv: pd.DataFrame  # ginpipe predict of those rows
    wavs: list[Path]
    wavs_csv: pd.DataFrame  # ginpipe predict of those files, by file name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """A digits run and an audio run (fast configs), and ``ginpipe predict`` of new inputs."""
    from sklearn.datasets import load_digits

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from make_audio_dataset import write_audio_events
    finally:
        sys.path.remove(str(REPO / "scripts"))
    folder = tmp_path_factory.mktemp("serve")
    mods = [arg for mod in SMALL for arg in ("-m", mod)]
    made = ginpipe(["run", *DIGITS, *mods, "--name", "digits"], folder)
    assert made.returncode == 0, made.stderr[-3000:]
    write_audio_events(folder / "data", AUDIO_ITEMS, 8000, duration=0.25, groups=8)
    (folder / "audio.gin").write_text(AUDIO_GIN)
    made = ginpipe(["run", "audio.gin", "--name", "audio"], folder)
    assert made.returncode == 0, made.stderr[-3000:]
    project = folder / "experiments" / folder.name

    rows = load_digits().data[-24:].astype(np.float32)
    np.save(folder / "rows.npy", rows)
    done = ginpipe(["predict", str(project / "digits"), "rows.npy", "-o", "rows.csv"], folder)
    assert done.returncode == 0, done.stderr[-3000:]
    new = folder / "new"
    new.mkdir()
    wavs = []
    for source in sorted((folder / "data").rglob("*.wav"))[:6]:
        wavs.append(new / source.name)
        shutil.copyfile(source, wavs[-1])
    done = ginpipe(["predict", str(project / "audio"), "new", "-o", "wavs.csv"], folder)
    assert done.returncode == 0, done.stderr[-3000:]
    wavs_csv = pd.read_csv(folder / "wavs.csv")
    wavs_csv.index = [Path(path).name for path in wavs_csv["path"]]
    return Runs(
        folder, project / "digits", project / "audio", rows,
        pd.read_csv(folder / "rows.csv"), wavs, wavs_csv,
    )  # fmt: skip


class Server:
    """``ginpipe serve`` in a subprocess; its output lines gathered by a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [*ginpipe_command(), "serve", *args, "--port", "0"],
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = READY.search(self.wait_for("serving ")).group(1)  # type: ignore[union-attr]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, text: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(
                    f"no '{text}' from the server: {''.join(self.output)}"
                ) from None
            if text in line:
                return line

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT_S)


@pytest.fixture(scope="module")
def server(runs: Runs) -> Iterator[Server]:
    """Both runs in one server; batches of at most 8 items wait up to 50 ms."""
    args = [str(runs.digits), str(runs.audio), "--max-batch-size", "8", "--batch-timeout", "50"]
    served = Server([*args, "--max-body", "200000"], runs.folder)
    try:
        yield served
    finally:
        served.stop()


def probabilities_of(answer: dict[str, Any]) -> list[float]:
    return list(answer["probabilities"].values())


def expected(table: pd.DataFrame, index: Any) -> tuple[str, list[float]]:
    columns = [column for column in table.columns if column.startswith("prob_")]
    return str(table.loc[index, "predicted_class"]), [float(v) for v in table.loc[index, columns]]


def same(answer: dict[str, Any], table: pd.DataFrame, index: Any) -> None:
    """The class and probabilities ``ginpipe predict`` wrote for the item. Equal up to
    float32 rounding: torch's CPU kernels for a batch of 1 and of 24 may differ in the last
    bit (``predict --batch-size 1`` and ``256`` differ alike)."""
    predicted, probabilities = expected(table, index)
    assert answer["predicted_class"] == predicted
    assert np.abs(np.array(probabilities_of(answer)) - probabilities).max() <= PROB_TOLERANCE


def test_concurrent_requests_are_batched_and_equal_ginpipe_predict(
    runs: Runs, server: Server
) -> None:
    digits, audio = f"{server.url}runs/digits/predict", f"{server.url}runs/audio/predict"
    with httpx.Client(timeout=60) as client:

        def one_row(index: int) -> dict[str, Any]:
            response = client.post(digits, json=runs.rows[index].tolist())
            assert response.status_code == 200, response.text
            return dict(response.json())

        def one_file(path: Path) -> dict[str, Any]:
            headers = {"content-type": "audio/wav"}
            response = client.post(audio, content=path.read_bytes(), headers=headers)
            assert response.status_code == 200, response.text
            return dict(response.json())

        with ThreadPoolExecutor(16) as pool:
            row_answers = list(pool.map(one_row, range(len(runs.rows))))
            file_answers = list(pool.map(one_file, runs.wavs))
        for index, answer in enumerate(row_answers):
            same(answer, runs.rows_csv, index)
        for path, answer in zip(runs.wavs, file_answers, strict=True):
            same(answer, runs.wavs_csv, path.name)

        # a list in one request: named rows of a table, base64 files
        names = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
        named = [dict(zip(names, map(float, row), strict=True)) for row in runs.rows[:5]]
        listed = client.post(digits, json=named).json()
        assert len(listed) == 5
        for index, answer in enumerate(listed):
            same(answer, runs.rows_csv, index)
        encoded = [base64.b64encode(path.read_bytes()).decode() for path in runs.wavs[:3]]
        listed = client.post(audio, json=encoded).json()
        assert len(listed) == 3
        for path, answer in zip(runs.wavs, listed, strict=False):
            same(answer, runs.wavs_csv, path.name)

        metrics = client.get(f"{server.url}metrics").text
    batches = float(_metric(metrics, 'ginpipe_batch_items_count{run="digits"}'))
    items = float(_metric(metrics, 'ginpipe_batch_items_sum{run="digits"}'))
    assert items == len(runs.rows) + 5  # every row went through the model once
    assert batches < len(runs.rows)  # concurrent rows shared batches
    answered = _metric(metrics, 'ginpipe_requests_total{code="200",run="audio"}')
    assert answered == "7.0"  # 6 files, 1 list


def _metric(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return line.split()[-1]
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def test_bad_input_is_one_json_line_and_the_server_goes_on(runs: Runs, server: Server) -> None:
    digits, audio = f"{server.url}runs/digits/predict", f"{server.url}runs/audio/predict"
    bad = [
        (digits, {"json": [1.0, 2.0, 3.0]}, 400, "shape"),
        (digits, {"json": [{"pixel_0_0": 1.0}]}, 400, "lacks"),
        (digits, {"content": b"{not json", "headers": {"content-type": "application/json"}},
         400, "not valid JSON"),
        (digits, {"content": b"\x89PNG", "headers": {"content-type": "image/png"}}, 415,
         "features"),
        (audio, {"content": b"not audio at all", "headers": {"content-type": "audio/wav"}},
         400, "the body"),
        (audio, {"json": ["%%%"]}, 400, "base64"),
        (audio, {"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "text/plain"),
        (audio, {"content": b"\0" * 300_000, "headers": {"content-type": "audio/wav"}}, 413,
         "--max-body"),
        (f"{server.url}runs/nope/predict", {"json": [0.0]}, 404, "digits, audio"),
        (f"{server.url}predict", {"json": [0.0]}, 404, "several runs"),
    ]  # fmt: skip
    with httpx.Client(timeout=60) as client:
        for url, request, status, fragment in bad:
            response = client.post(url, **request)
            assert response.status_code == status, (url, request, response.text)
            assert "\n" not in response.text.strip()
            message = response.json()["error"]
            assert fragment in message, message
            assert "/tmp" not in message and "Traceback" not in message
        wrong_method = client.get(digits)
        assert wrong_method.status_code == 405 and "POST" in wrong_method.json()["error"]
        assert wrong_method.headers["allow"] == "POST"
        good = client.post(digits, json=runs.rows[0].tolist())
        assert good.status_code == 200
        assert client.get(f"{server.url}health").json() == {"status": "ok"}
        assert client.get(f"{server.url}ready").json()["runs"] == ["digits", "audio"]
        info = client.get(f"{server.url}runs/audio/info").json()
        assert len(info["classes"]) == 5  # the generated events' classes
        assert info["input"]["kind"] == "files" and info["metric"]["name"] == "accuracy"
        metrics = client.get(f"{server.url}metrics").text
    assert _metric(metrics, 'ginpipe_request_errors_total{kind="too_large",run="audio"}') == "1.0"
    assert (
        float(_metric(metrics, 'ginpipe_request_errors_total{kind="bad_input",run="digits"}')) == 3
    )


def test_sigterm_answers_the_requests_in_flight(runs: Runs) -> None:
    served = Server([str(runs.digits)], runs.folder)
    release = threading.Event()
    sent_half = threading.Semaphore(0)
    body = json.dumps(runs.rows[1].tolist()).encode()

    def slow_body() -> Iterator[bytes]:
        yield body[:10]
        sent_half.release()
        release.wait(WAIT_S)
        yield body[10:]

    def call() -> httpx.Response:
        with httpx.Client(timeout=WAIT_S) as client:
            headers = {"content-type": "application/json"}
            return client.post(f"{served.url}predict", content=slow_body(), headers=headers)

    try:
        with ThreadPoolExecutor(3) as pool:
            calls = [pool.submit(call) for _ in range(3)]
            for _ in calls:
                assert sent_half.acquire(timeout=WAIT_S)
            with httpx.Client(timeout=WAIT_S) as client:  # the server is reading all three
                while _metric(client.get(f"{served.url}metrics").text, IN_FLIGHT) != "3.0":
                    time.sleep(0.05)
            served.proc.send_signal(signal.SIGTERM)
            served.wait_for("stopping: answering 3 request(s) in flight")
            refused_by = time.monotonic() + 10  # the listener closes within uvicorn's tick
            while _connects(f"{served.url}health"):
                assert time.monotonic() < refused_by, "new connections still accepted"
                time.sleep(0.05)
            release.set()
            answers = [future.result() for future in calls]
    finally:
        release.set()
        code = served.stop()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        same(answer.json(), runs.rows_csv, 1)
    assert code == 143, "".join(served.output)


def _connects(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


def test_missing_run_or_busy_port_is_one_line_before_loading(runs: Runs) -> None:
    missing = ginpipe(["serve", "no_such_run", "--port", "0"], runs.folder)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: run directory 'no_such_run' does not exist"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = ginpipe(["serve", str(runs.digits), "--port", str(port)], runs.folder)
    assert busy.returncode == 2
    assert busy.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: in use; choose another with --port"
    )
    assert busy.stdout == ""
