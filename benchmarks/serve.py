"""Serving: ``ginpipe serve`` (dynamic batching) against a hand-written FastAPI + uvicorn
endpoint that runs the same model one request at a time
(``baselines/serve_fastapi.py``), on 127.0.0.1.

For each model (digits features; the audio example, WAV files sent as bytes) and each
round, each server is started fresh and measured in turn: start to ready (first ``GET
/health`` answered), one client's latency (sequential requests), then 64 concurrent
clients for a fixed time (requests/s, p50 and p99 latency, errors). Memory per extra loaded
run: the resident memory of ``ginpipe serve`` with one digits run and with three copies.
The load comes from a lean asyncio HTTP/1.1 client in its own process (keep-alive
connections, one request in flight per client), so the client's own cost stays small
next to the servers'. Beside requests/s, the CPU time per request of each server and of
the client is recorded (it holds on a busy machine, where requests/s do not), and the HTTP
floor: an endpoint with no model (``baselines/serve_empty.py``), plain ASGI and FastAPI.

    python -m benchmarks.serve --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import (
    BENCH_DIR,
    MIN_DISTURBANCE_S,
    PYTHON,
    REPO,
    WORK,
    BenchResult,
    Target,
    child_env,
    ginpipe_cmd,
    interleave,
    log,
    machine_busy_seconds,
    markdown_table,
    paired_ratios,
    quiet_note,
    run_measured,
    summarize,
)
from benchmarks.predict_audio import ensure_recordings

BASELINE = BENCH_DIR / "baselines" / "serve_fastapi.py"
EMPTY = BENCH_DIR / "baselines" / "serve_empty.py"
CLIENTS = 64
LOAD_S = 10.0
SINGLE_REQUESTS = 300
WARMUP_REQUESTS = 20
THROUGHPUT_TARGET = 3.0
LATENCY_LIMIT = 1.1
AUDIO_RECORDINGS = 300
EXTRA_RUNS = 2
# Both servers run torch on one thread. With torch's default two OpenMP threads, on this
# shared 2-core machine under load, the one-at-a-time endpoint's single-client p50 measured
# 82 and 212 ms in two starts minutes apart, and 8 ms with one thread: that measured the
# machine, not batching (benchmarks/RESULTS.md, "Serving over HTTP").
TORCH_THREADS = 1
# The tests' digits model: little compute per item, so HTTP and per-call costs dominate.
SMALL_RESNET = ("ResNet.width=8", "ResNet.blocks_per_stage=[1]")


# -- the models -------------------------------------------------------------------------------


def ensure_digits_run(name: str = "digits", mods: tuple[str, ...] = ()) -> Path:
    """The shipped ResNet on digits (with ``mods``), trained once with the fast config."""
    root = WORK / "serve_root"
    run_dir = root / "bench" / name
    if not (run_dir / "model" / "model.json").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
        log(f"serve: training the {name} model once")
        configs = [str(REPO / "configs" / c) for c in ("base.gin", "models/resnet.gin")]
        configs.append(str(REPO / "configs" / "debug" / "fast.gin"))
        cmd = ginpipe_cmd(
            "run", *configs, *[arg for mod in mods for arg in ("-m", mod)],
            "--root", str(root), "--project", "bench", "--name", name,
        )  # fmt: skip
        run_measured(cmd).check(f"ginpipe run ({name} serve model)")
    return run_dir


def ensure_audio_run() -> tuple[Path, Path]:
    """The audio example trained once (fast config) on a few generated recordings; the run
    and one of its WAV files."""
    labels = ensure_recordings(AUDIO_RECORDINGS)
    root = WORK / "serve_audio_root"
    run_dir = root / "bench" / "audio"
    if not (run_dir / "model" / "model.json").is_file():
        shutil.rmtree(root, ignore_errors=True)
        log("serve: training the audio model once")
        configs = [str(REPO / "configs" / c) for c in ("base.gin", "data/audio.gin")]
        configs += [str(REPO / "configs" / c) for c in ("models/audio_cnn.gin", "debug/fast.gin")]
        cmd = ginpipe_cmd("run", *configs, "--root", str(root), "--project", "bench",
                          "--name", "audio")  # fmt: skip
        run_measured(cmd, cwd=labels.parents[3]).check("ginpipe run (audio serve model)")
    wav = sorted(labels.parent.rglob("*.wav"))[0]
    return run_dir, wav


def digits_body() -> bytes:
    from sklearn.datasets import load_digits

    return json.dumps(load_digits().data[-1].tolist()).encode()


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Started:
    """A server process, timed from its start to its first answered ``GET /health``."""

    def __init__(self, cmd: list[str], port: int) -> None:
        self.port = port
        start = time.perf_counter()
        env = child_env(OMP_NUM_THREADS=str(TORCH_THREADS))
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        while not _answers(port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.02)
        self.ready_s = time.perf_counter() - start

    def cpu_s(self) -> float:
        """CPU seconds the server has used (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def start(side: str, run_dirs: list[Path]) -> Started:
    port = free_port()
    if side == "ginpipe":
        cmd = ginpipe_cmd("serve", *map(str, run_dirs), "--port", str(port))
    elif side in ("asgi", "fastapi"):  # the HTTP floor: no model
        cmd = [PYTHON, str(EMPTY), "--app", side, "--port", str(port)]
    else:
        cmd = [PYTHON, str(BASELINE), "--run", str(run_dirs[0]), "--port", str(port)]
    return Started(cmd, port)


# -- the load ---------------------------------------------------------------------------------


def load(port: int, path: str, body: Path, content_type: str, clients: int, **how: Any) -> dict:
    """Run the load client in its own process; its JSON summary."""
    cmd = [PYTHON, "-m", "benchmarks.serve", "--client", "--port", str(port), "--path", path]
    cmd += ["--body", str(body), "--content-type", content_type, "--clients", str(clients)]
    for key, value in how.items():
        cmd += [f"--{key}", str(value)]
    done = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def _client(
    port: int, request: bytes, stop_at: float, count: int, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while time.perf_counter() < stop_at and done < count:
            began = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    close = True
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            done += 1
            if not status.startswith(b"HTTP/1.1 200"):
                errors.append(status.decode("latin-1").strip())
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except (OSError, asyncio.IncompleteReadError) as error:
        errors.append(f"{type(error).__name__}: {error}")
    finally:
        writer.close()


async def _drive(args: argparse.Namespace) -> dict[str, Any]:
    body = Path(args.body).read_bytes()
    head = (f"POST {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {args.content_type}"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    request = head + body
    warm: list[float] = []
    await _client(args.port, request, time.perf_counter() + 60, WARMUP_REQUESTS, warm, [])
    latencies: list[float] = []
    errors: list[str] = []
    per_client = args.count if args.count else 10**9
    stop_at = time.perf_counter() + (args.seconds if args.seconds else 3600)
    began = time.perf_counter()
    cpu_began = time.process_time()
    await asyncio.gather(
        *(_client(args.port, request, stop_at, per_client, latencies, errors)
          for _ in range(args.clients))
    )  # fmt: skip
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": quantile(0.50),
        "p99_ms": quantile(0.99),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "client_cpu_s": cpu,
    }


# -- rounds and report ------------------------------------------------------------------------


def measure(side: str, run_dir: Path, path: str, body: Path, content_type: str) -> dict:
    server = start(side, [run_dir])
    try:
        single = load(server.port, path, body, content_type, 1, count=SINGLE_REQUESTS)
        many = loaded(server, path, body, content_type)
        return {"ready_s": server.ready_s, "single": single, "many": many, "rss": server.rss_mb()}
    finally:
        server.stop()


def loaded(server: Started, path: str, body: Path, content_type: str) -> dict:
    """``CLIENTS`` clients for ``LOAD_S``; with the server's and the client's CPU ms per
    request. Other processes' CPU use meanwhile is recorded as the round's interference
    (``interleave`` runs a disturbed round again)."""
    busy, cpu, began = machine_busy_seconds(), server.cpu_s(), time.perf_counter()
    many = load(server.port, path, body, content_type, CLIENTS, seconds=LOAD_S)
    server_cpu = server.cpu_s() - cpu
    answered = many["requests"] + WARMUP_REQUESTS
    many["server_cpu_ms"] = 1000 * server_cpu / answered
    many["client_cpu_ms"] = 1000 * many["client_cpu_s"] / many["requests"]
    other = machine_busy_seconds() - busy - server_cpu - many["client_cpu_s"]
    # the client's start-up and warm-up are counted as other: a fraction of a core-second
    background = other / (time.perf_counter() - began) if other > 2 * MIN_DISTURBANCE_S else 0.0
    common._interference.append(background)
    many["background_cores"] = background
    return many


def http_floor(body: Path) -> dict[str, dict]:
    """Requests/s at ``CLIENTS`` clients of an endpoint with no model, per app."""
    found = {}
    for app in ("asgi", "fastapi"):
        server = start(app, [])
        try:
            found[app] = loaded(server, "/predict", body, "application/json")
        finally:
            server.stop()
    return found


def extra_run_memory(run_dir: Path) -> dict[str, float]:
    """Resident MiB of ``ginpipe serve`` with one run and with ``1 + EXTRA_RUNS`` copies."""
    copies = [run_dir]
    for index in range(EXTRA_RUNS):
        copy = WORK / "serve_copies" / f"digits{index + 2}"
        if not copy.exists():
            shutil.copytree(run_dir, copy)
        copies.append(copy)
    found = {}
    for count in (1, len(copies)):
        server = start("ginpipe", copies[:count])
        try:
            found[f"rss_{count}"] = server.rss_mb()
            found[f"ready_{count}"] = server.ready_s
        finally:
            server.stop()
    found["per_extra"] = (found[f"rss_{len(copies)}"] - found["rss_1"]) / EXTRA_RUNS
    return found


def run(repeats: int) -> BenchResult:
    digits = ensure_digits_run()
    audio, wav = ensure_audio_run()
    row = WORK / "serve_digits_row.json"
    row.write_bytes(digits_body())
    small = ensure_digits_run("digits-small", SMALL_RESNET)
    cases = {
        "digits": (digits, row, "application/json"),
        "digits-small": (small, row, "application/json"),
        "audio": (audio, wav, "audio/wav"),
    }
    variants = {
        f"{side} {case}": (
            lambda _, s=side, c=cases[case]: measure(s, c[0], "/predict", c[1], c[2])
        )
        for case in cases
        for side in ("ginpipe", "hand-written")
    }
    variants["HTTP floor"] = lambda _: http_floor(row)
    results = interleave(variants, repeats)
    memory = [extra_run_memory(digits) for _ in range(repeats)]
    same = compare_answers(digits, row, "application/json") and compare_answers(
        audio, wav, "audio/wav"
    )
    sections, targets = [], []
    for case in cases:
        gp, hw = results[f"ginpipe {case}"], results[f"hand-written {case}"]
        rps = paired_ratios([g["many"]["rps"] for g in gp], [h["many"]["rps"] for h in hw])
        cpu = paired_ratios(
            [h["many"]["server_cpu_ms"] + h["many"]["client_cpu_ms"] for h in hw],
            [g["many"]["server_cpu_ms"] + g["many"]["client_cpu_ms"] for g in gp],
        )
        single = paired_ratios(
            [g["single"]["p50_ms"] for g in gp], [h["single"]["p50_ms"] for h in hw]
        )

        def col(rows: list[dict], *keys: str, digits: int = 1) -> str:
            values = []
            for row_ in rows:
                value: Any = row_
                for key in keys:
                    value = value[key]
                values.append(float(value))
            return summarize(values).fmt(digits)

        table = markdown_table(
            ["", "hand-written (one at a time)", "ginpipe serve (batching)", "ratio"],
            [
                [f"{CLIENTS} clients: requests/s", col(hw, "many", "rps", digits=0),
                 col(gp, "many", "rps", digits=0), rps.fmt(2)],
                [f"{CLIENTS} clients: p50 ms", col(hw, "many", "p50_ms"),
                 col(gp, "many", "p50_ms"), ""],
                [f"{CLIENTS} clients: p99 ms", col(hw, "many", "p99_ms"),
                 col(gp, "many", "p99_ms"), ""],
                [f"{CLIENTS} clients: errors", col(hw, "many", "errors", digits=0),
                 col(gp, "many", "errors", digits=0), ""],
                [f"{CLIENTS} clients: server CPU ms per request",
                 col(hw, "many", "server_cpu_ms", digits=3),
                 col(gp, "many", "server_cpu_ms", digits=3), ""],
                [f"{CLIENTS} clients: client CPU ms per request",
                 col(hw, "many", "client_cpu_ms", digits=3),
                 col(gp, "many", "client_cpu_ms", digits=3), ""],
                [f"{CLIENTS} clients: CPU per request (server + client), hand-written / "
                 "ginpipe", "", "", cpu.fmt(2)],
                ["1 client: p50 ms", col(hw, "single", "p50_ms", digits=2),
                 col(gp, "single", "p50_ms", digits=2), single.fmt(3)],
                ["1 client: p99 ms", col(hw, "single", "p99_ms", digits=2),
                 col(gp, "single", "p99_ms", digits=2), ""],
                ["start to ready, s", col(hw, "ready_s", digits=2), col(gp, "ready_s", digits=2),
                 ""],
                ["server RSS after the load, MiB", col(hw, "rss", digits=0),
                 col(gp, "rss", digits=0), ""],
            ],
        )  # fmt: skip
        sections += [f"**{case}**", table]
        errors = sum(r["many"]["errors"] + r["single"]["errors"] for r in gp)
        targets += [
            Target(
                f"{case}: requests/s at {CLIENTS} clients, serve / hand-written",
                rps.median,
                THROUGHPUT_TARGET,
                higher_is_better=True,
            ),
            Target(
                f"{case}: 1-client p50 latency, serve / hand-written", single.median, LATENCY_LIMIT
            ),
            Target(f"{case}: errors of ginpipe serve", errors, 0),
        ]
    floors = results["HTTP floor"]
    floor_rps = {app: summarize([f[app]["rps"] for f in floors]).fmt(0) for app in floors[0]}
    floor_cpu = {
        app: summarize([f[app]["server_cpu_ms"] + f[app]["client_cpu_ms"] for f in floors]).fmt(3)
        for app in floors[0]
    }
    sections.append(
        f"HTTP floor (`baselines/serve_empty.py`: a fixed answer, no model, the same client): "
        f"plain ASGI {floor_rps['asgi']} requests/s at {CLIENTS} clients ({floor_cpu['asgi']} "
        f"ms CPU per request, server + client), FastAPI route {floor_rps['fastapi']} "
        f"({floor_cpu['fastapi']} ms). {_http_stack()}"
    )
    per_extra = summarize([m["per_extra"] for m in memory])
    several = 1 + EXTRA_RUNS
    one_rss = summarize([m["rss_1"] for m in memory]).fmt(0)
    all_rss = summarize([m[f"rss_{several}"] for m in memory]).fmt(0)
    all_ready = summarize([m[f"ready_{several}"] for m in memory]).fmt(2)
    sections.append(
        f"Memory: `ginpipe serve` with one digits run {one_rss} MiB resident, with {several} "
        f"copies of it {all_rss} MiB: {per_extra.fmt(1)} MiB per extra loaded run; start to "
        f"ready with {several} runs {all_ready} s."
    )
    body = "\n\n".join(
        filter(
            None,
            [
                f"Each round starts each server fresh on 127.0.0.1; a lean asyncio HTTP/1.1 "
                f"client in its own process sends {WARMUP_REQUESTS} warm-up requests, then "
                f"{SINGLE_REQUESTS} requests from one client, then {CLIENTS} clients for "
                f"{LOAD_S:.0f} s (keep-alive, one request in flight each). digits: the shipped "
                f"ResNet (width 32) trained with configs/debug/fast.gin, one row of 64 numbers "
                f"as JSON; digits-small: the same with {', '.join(SMALL_RESNET)}; audio: the "
                f"audio example's model (fast config), one 1 s 16 kHz WAV "
                f"sent as bytes. `ginpipe serve` defaults: --max-batch-size 64, --batch-timeout "
                f"5 ms, --workers 1; both servers with OMP_NUM_THREADS={TORCH_THREADS}. "
                f"{len(results['ginpipe digits'])} rounds interleaved. CPU per request: the "
                f"server's (all its threads, /proc) and the client's (its process time) over "
                f"the {CLIENTS}-client load, divided by the requests answered; unlike "
                f"requests/s it holds while other processes share the cores. "
                f"Answers of the two servers: {'identical' if same else '**different**'}.",
                *sections,
                quiet_note(results),
            ],
        )
    )
    return BenchResult(key="serve", title="Serving over HTTP", body=body, targets=targets)


def _http_stack() -> str:
    """What uvicorn runs on here ("auto" picks uvloop and httptools when importable)."""
    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"All servers: uvicorn {uvicorn.__version__} on {loop} with {http}."


def compare_answers(run_dir: Path, body: Path, content_type: str) -> bool:
    """Both servers give the same class and probabilities for the same request."""
    answers = []
    for side in ("ginpipe", "hand-written"):
        server = start(side, [run_dir])
        try:
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                content = body.read_bytes()
                sock.sendall(
                    f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(content)}\r\nConnection: close\r\n\r\n".encode()
                    + content
                )
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            answers.append(json.loads(reply.split(b"\r\n\r\n", 1)[1]))
        finally:
            server.stop()
    return bool(answers[0] == answers[1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--client", action="store_true", help="run the load client, JSON out")
    parser.add_argument("--port", type=int)
    parser.add_argument("--path", default="/predict")
    parser.add_argument("--body")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(_drive(args))))
    else:
        result = run(args.repeats)
        print(result.body)
        for target in result.targets:
            print(" | ".join(target.row()), file=sys.stderr)
