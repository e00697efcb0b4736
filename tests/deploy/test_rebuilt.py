"""A run rebuilt from its build context alone, as a user would: a fresh virtual environment
installed from the context's lock and ginpipe wheel predicts exactly what the run predicts;
where a container engine can build and run images, the image serves the same answers.

One run (a user's own model class in their own module, on scikit-learn's digits) is
trained through the console script and its context written once for the module. The
context is then copied away from the checkout and the project, and the user's module is
deleted from the project: only what the context holds can be used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ginpipe.runs.provenance import normalized, pip_sources, read_lock

pytestmark = [
    pytest.mark.slow,
    pytest.mark.heavy,  # a fresh virtual environment installed from the context
    pytest.mark.skipif(shutil.which("ginpipe") is None, reason="console script"),
]

MODELS = '''
from torch import nn


class TinyNet(nn.Module):
    """The user's own network, named in the config by its dotted path."""

    def __init__(self, num_classes, input_shape, hidden=32):
        super().__init__()
        size = 1
        for dim in input_shape:
            size *= dim
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.body(x)
'''

CONFIG = """
fit.model = @mymodels.TinyNet
mymodels.TinyNet.hidden = 16
fit.num_workers = 0
"""
INSTALL_TIMEOUT = 1800  # a cold install downloads what this machine's mirrors lack


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GINPIPE_", "PYTHONPATH"))}
    env.update(extra)
    return env


def run(*args: str | Path, cwd: Path, timeout: float = 600, **env: str) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=clean_env(**env),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}{done.stdout[-2000:]}"
    return done.stdout


@dataclass
class Trained:
    context: Path
    items: Path  # 32 digit rows, raw
    expected: pd.DataFrame  # `ginpipe predict` of the items with the run itself


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    project = tmp_path_factory.mktemp("project")
    (project / "mymodels.py").write_text(MODELS)
    (project / "my.gin").write_text(CONFIG)
    run("ginpipe", "run", "base", "models/resnet", "my.gin", "debug/fast", "--name", "served",
        cwd=project)  # fmt: skip
    run_dir = project / "experiments" / project.name / "served"
    run("ginpipe", "container", run_dir, "-o", project / "ctx", cwd=project)
    from sklearn.datasets import load_digits

    items = project / "items.npy"
    np.save(items, load_digits().data[:32].astype(np.float32))
    run("ginpipe", "predict", run_dir, items, "-o", project / "expected.csv", cwd=project)
    (project / "mymodels.py").unlink()  # from here on, only the context's copy exists
    return Trained(project / "ctx", items, pd.read_csv(project / "expected.csv"))


def copied_away(trained: Trained, folder: Path) -> Path:
    """The context and the items in a folder that knows nothing of the checkout."""
    shutil.copytree(trained.context, folder / "ctx")
    shutil.copy(trained.items, folder / "items.npy")
    return folder / "ctx"


def same_predictions(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert got["predicted_class"].tolist() == expected["predicted_class"].tolist()
    probs = [c for c in expected.columns if c.startswith("prob_")]
    assert np.abs(got[probs].to_numpy() - expected[probs].to_numpy()).max() <= 1e-6


def test_a_fresh_venv_from_the_context_alone_predicts_what_the_run_predicts(
    trained: Trained, tmp_path: Path
) -> None:
    context = copied_away(trained, tmp_path)
    env = tmp_path / "env"
    run(sys.executable, "-m", "venv", env, cwd=tmp_path)
    path = f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}"
    # PIP_RETRIES=0: where PyTorch's index cannot be reached (mirrors only), pip moves on to
    # this machine's configured sources at once instead of retrying for each package.
    run("sh", context / "install.sh", cwd=tmp_path, timeout=INSTALL_TIMEOUT, PATH=path,
        PIP_RETRIES="0", PIP_NO_COMPILE="1")  # fmt: skip

    python = env / "bin" / "python"
    probe = "import ginpipe, json, importlib.metadata as m; print(json.dumps([ginpipe.__file__, {d.metadata['Name']: d.version for d in m.distributions()}]))"  # noqa: E501
    module_file, versions = json.loads(run(python, "-c", probe, cwd=tmp_path))
    assert module_file.startswith(str(env))  # ginpipe from the wheel, not the checkout
    installed = {normalized(name): version for name, version in versions.items()}
    lock = read_lock(context / "run" / "environment.txt")
    for line in lock.pins:  # every pin of the run's lock, at its version
        name, version = line.split("==")
        assert installed.get(normalized(name)) == version, line
    pinned = {normalized(line.split("==")[0]) for line in lock.pins}
    assert set(installed) - pinned == {"ginpipe-ml", "pip"}  # nothing the lock does not name

    run(env / "bin" / "ginpipe", "predict", context / "run", tmp_path / "items.npy",
        "-o", tmp_path / "got.csv", cwd=tmp_path, PYTHONPATH=str(context / "code"))  # fmt: skip
    same_predictions(pd.read_csv(tmp_path / "got.csv"), trained.expected)

    # A run started here would lock ginpipe as the wheel it was installed from.
    origin = "from ginpipe.runs.provenance import ginpipe_origin; import json; print(json.dumps(ginpipe_origin()))"  # noqa: E501
    found = json.loads(run(python, "-c", origin, cwd=tmp_path))
    (wheel,) = (context / "wheels").glob("ginpipe_ml-*.whl")
    assert found["kind"] == "wheel" and found["url"] == wheel.as_uri()
    assert found["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()


# -- the image --------------------------------------------------------------------------------


def container_engine() -> tuple[str | None, str]:
    """docker or podman if one answers ``info``; else None and why not."""
    reasons = []
    for name in ("docker", "podman"):
        if shutil.which(name) is None:
            reasons.append(f"no {name} on PATH")
            continue
        try:
            probe = subprocess.run([name, "info"], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            reasons.append(f"`{name} info` did not answer in 60 s")
            continue
        if probe.returncode == 0:
            return name, ""
        lines = [line for line in probe.stderr.splitlines() if line.strip()]
        reasons.append(f"`{name} info` failed: {lines[-1] if lines else probe.returncode}")
    return None, "; ".join(reasons)


def base_image(engine: str, python: str) -> tuple[str | None, str]:
    """The Dockerfile's base image, present or pulled (GINPIPE_TEST_BASE_IMAGE names a local
    one); else None and why not."""
    image = os.environ.get("GINPIPE_TEST_BASE_IMAGE", f"python:{python}-slim")
    if subprocess.run([engine, "image", "inspect", image], capture_output=True).returncode == 0:
        return image, ""
    pulled = subprocess.run([engine, "pull", image], capture_output=True, text=True, timeout=300)
    if pulled.returncode == 0:
        return image, ""
    lines = [line for line in pulled.stderr.splitlines() if line.strip()]
    why = lines[-1] if lines else f"exit code {pulled.returncode}"
    return None, (
        f"{engine} cannot pull the base image {image} ({why}); set GINPIPE_TEST_BASE_IMAGE "
        f"to a local image with Python {python}"
    )


def build_arguments(engine: str) -> list[str]:
    """This machine's pip sources, passed to the build as pip's variables; podman mounts the
    local ones (a wheel folder; a file:// index with the files its pages link to, beside it)."""
    args = ["--network", "host", "--build-arg", "PIP_RETRIES=0"]
    for key, values in pip_sources().items():
        local = {
            v: v.removeprefix("file://")
            for v in values
            if "://" not in v or v.startswith("file://")
        }
        if engine != "podman":
            values = [v for v in values if v not in local]
        for folder in local.values():
            mounted = Path(folder) if key == "find-links" else Path(folder).parent
            if engine == "podman" and mounted.exists():
                args += ["-v", f"{mounted}:{mounted}:ro"]
        if values:
            args += ["--build-arg", f"PIP_{key.upper().replace('-', '_')}={' '.join(values)}"]
    cert = os.environ.get("PIP_CERT")  # a proxy's CA bundle, as pip here uses it
    if cert and engine == "podman" and Path(cert).is_file():
        args += ["-v", f"{cert}:{cert}:ro", "--build-arg", f"PIP_CERT={cert}"]
    return args


def test_the_image_builds_predicts_and_serves(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine, why = container_engine()
    if engine is None:
        pytest.skip(f"no container engine can run here: {why}")
    python = ".".join(map(str, sys.version_info[:2]))
    base, why = base_image(engine, python)
    if base is None:
        pytest.skip(why)
    trained: Trained = request.getfixturevalue("trained")
    context = copied_away(trained, tmp_path)
    tag = f"ginpipe-test-{uuid.uuid4().hex[:8]}"
    run(engine, "build", "-t", tag, "--build-arg", f"BASE={base}", *build_arguments(engine),
        context, cwd=tmp_path, timeout=INSTALL_TIMEOUT)  # fmt: skip
    try:
        data = tmp_path / "data"
        data.mkdir()
        shutil.copy(trained.items, data / "items.npy")
        data.chmod(0o777)  # the image's user writes the predictions
        run(engine, "run", "--rm", "-v", f"{data}:/data", tag, "predict", "/app/run",
            "/data/items.npy", "-o", "/data/got.csv", cwd=tmp_path)  # fmt: skip
        same_predictions(pd.read_csv(data / "got.csv"), trained.expected)
        served = serve_in_container(engine, tag, tmp_path)
        rows = np.load(trained.items)[:8].tolist()
        answers = post_json(f"{served}/predict", rows)
        expected = trained.expected.head(8)
        classes = expected["predicted_class"].astype(str).tolist()
        assert [answer["predicted_class"] for answer in answers] == classes
        for answer, (_, row) in zip(answers, expected.iterrows(), strict=True):
            for name, probability in answer["probabilities"].items():
                assert abs(probability - row[f"prob_{name}"]) <= 1e-6
    finally:
        subprocess.run([engine, "rm", "-f", tag], capture_output=True)
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True)


def serve_in_container(engine: str, tag: str, tmp_path: Path) -> str:
    """Start the image's own command on a free port of the host network; its URL once ready."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run(engine, "run", "-d", "--name", tag, "--network", "host", tag, "serve", "/app/run",
        "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=5) as response:
                if response.status == 200:
                    return url
        except OSError:
            time.sleep(1)
    logs = subprocess.run([engine, "logs", tag], capture_output=True, text=True).stderr
    raise AssertionError(f"the container never became ready: {logs[-2000:]}")


def post_json(url: str, payload: object) -> list[dict]:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as r:
        return list(json.loads(r.read()))
