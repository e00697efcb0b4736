"""``ginpipe container RUN -o DIR``: what the build context holds, and what it refuses.

A run directory made by hand (config, record, lock, model files) stands in for a trained
run: the context copies files and builds ginpipe's wheel, it never loads the model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ginpipe.base.errors import EXIT_BAD_PATH, EXIT_USAGE, ConfigError
from ginpipe.deploy import context as context_module
from ginpipe.deploy import wheel as wheel_module
from ginpipe.deploy.requirements import split_lock
from ginpipe.runs.provenance import RECORD_PREFIX, Lock, environment_lock, read_lock

# a trained run and a built context (its wheel) shared by the module's tests
pytestmark = pytest.mark.slow

MODULE = "def width():\n    return 3\n"
INIT = "# the package of the run's model\n"


def with_record(text: str, **changes: object) -> str:
    """The lock ``text`` with fields of its ``# record:`` line replaced."""
    lines = []
    for line in text.splitlines():
        if line.startswith(RECORD_PREFIX):
            record = json.loads(line[len(RECORD_PREFIX) :])
            record.update(changes)
            line = RECORD_PREFIX + json.dumps(record)
        lines.append(line)
    return "\n".join(lines) + "\n"


def module_entry(path: Path, module: str, relative: str) -> dict[str, str]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"module": module, "path": str(path), "relative": relative, "sha256": digest}


def make_run(folder: Path, lock: str) -> Path:
    run = folder / "experiments" / "proj" / "Run.One"
    for name, text in {
        "config.gin": "run.tasks = []\n",
        "resolved.gin": "run.tasks = []\n",
        "operative.gin": "run.tasks = []\n",
        "overrides.txt": "",
        "run.json": json.dumps({"name": "Run.One", "status": "completed"}),
        "metrics.json": json.dumps({"accuracy": 0.5}),
        "environment.txt": lock,
        "model/model.json": json.dumps({"kind": "network"}),
        "model/weights.safetensors": "weights",
        "model/.tmp-abc.safetensors": "a leftover of an interrupted write",
        "checkpoints/last.ckpt": "checkpoint",
        "logs/metrics.csv": "epoch\n",
        "predictions.csv": "row\n",
        "run.log": "log\n",
    }.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    return run


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a package of the user's (``mine.models``) and one run of it."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "mine").mkdir()
    (folder / "mine" / "__init__.py").write_text(INIT)
    (folder / "mine" / "models.py").write_text(MODULE)
    modules = [
        module_entry(folder / "mine" / "__init__.py", "mine", "mine/__init__.py"),
        module_entry(folder / "mine" / "models.py", "mine.models", "mine/models.py"),
    ]
    make_run(folder, with_record(environment_lock(), modules=modules))
    return folder


@pytest.fixture(scope="module")
def built(project: Path) -> Path:
    """The context of the project's run, written once (building the wheel takes seconds)."""
    out = project / "build" / "ctx"
    summary = context_module.write_context(run_of(project), out)
    assert summary.startswith(f"build context: {out} (torch ")
    assert "docker build -t ginpipe-run.one " in summary
    return out


def run_of(project: Path) -> Path:
    return project / "experiments" / "proj" / "Run.One"


def test_the_context_holds_the_recipe_lock_wheel_modules_and_model(built: Path) -> None:
    files = sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())
    assert files == [
        ".dockerignore",
        "Dockerfile",
        "code/mine/__init__.py",
        "code/mine/models.py",
        "context.json",
        "install.sh",
        "requirements.txt",
        "run/config.gin",
        "run/environment.txt",
        "run/metrics.json",
        "run/model/model.json",
        "run/model/weights.safetensors",
        "run/operative.gin",
        "run/overrides.txt",
        "run/resolved.gin",
        "run/run.json",
        "torch.txt",
        "wheels/ginpipe_ml-0.1.0-py3-none-any.whl",
    ]
    assert (built / "code" / "mine" / "models.py").read_text() == MODULE
    assert not list(built.parent.glob(".tmp-*"))  # the temp folder became the context
    assert built.stat().st_mode & 0o755 == 0o755


def test_the_wheel_is_ginpipe_as_its_checkout_is(built: Path) -> None:
    import ginpipe

    source = Path(ginpipe.__file__).resolve().parent
    with zipfile.ZipFile(built / "wheels" / "ginpipe_ml-0.1.0-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        assert (
            wheel.read("ginpipe/deploy/context.py")
            == (source / "deploy" / "context.py").read_bytes()
        )
    assert "ginpipe/configs/base.gin" in names and "ginpipe/py.typed" in names
    facts = json.loads((built / "context.json").read_text())
    assert facts["ginpipe"]["kind"] == "checkout" and facts["ginpipe_changed_since_run"] is False


def test_requirements_are_the_lock_without_torch_and_ginpipe(built: Path, project: Path) -> None:
    lock = read_lock(run_of(project) / "environment.txt")
    pinned = [
        line for line in (built / "requirements.txt").read_text().splitlines()
        if not line.startswith("#")
    ]  # fmt: skip
    expected = [p for p in lock.pins if not p.lower().startswith(("torch==", "nvidia-"))]
    assert pinned == expected
    assert not any(line.startswith("--") for line in pinned)  # no machine's folders
    torch = (built / "torch.txt").read_text().splitlines()
    version = lock.pin("torch").split("==")[1].split("+")[0]  # type: ignore[union-attr]
    assert torch[-2:] == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        f"torch=={version}+cpu",
    ]


def test_install_sh_pins_everything_and_ends_with_pip_check(built: Path) -> None:
    steps = [
        line
        for line in (built / "install.sh").read_text().splitlines()
        if line.startswith("python")
    ]
    assert steps == [
        "python -m pip install --no-deps -r requirements.txt",
        "python -m pip install -c requirements.txt -r torch.txt",
        "python -m pip install -c requirements.txt "
        "'wheels/ginpipe_ml-0.1.0-py3-none-any.whl[serve]'",
        "python -m pip check",
    ]


def test_the_dockerfile_serves_the_run_from_a_slim_base(built: Path) -> None:
    text = (built / "Dockerfile").read_text()
    assert "ARG BASE=python:3.11-slim\nFROM ${BASE}\n" in text
    assert "RUN sh install.sh" in text and "ENV PYTHONPATH=/app/code" in text
    assert 'ENTRYPOINT ["ginpipe"]' in text
    assert 'CMD ["serve", "/app/run", "--host", "0.0.0.0", "--port", "8000"]' in text
    assert "USER ginpipe" in text
    assert "COPY --chown=ginpipe:ginpipe run/ run/" in text
    copied = [line.split()[-2] for line in text.splitlines() if line.startswith("COPY")]
    assert all((built / name).exists() for name in copied)
    assert "__pycache__" in (built / ".dockerignore").read_text()


def test_cuda_takes_torch_from_pypi_and_leaves_its_packages_to_it() -> None:
    lock = Lock(
        ["numpy==2.0", "nvidia-cublas==12.1", "torch==2.13.0+cpu", "torchvision==0.1+cpu"], []
    )
    cuda = split_lock(lock, cuda=True)
    assert cuda.pinned == "numpy==2.0\n"
    assert cuda.torch.splitlines()[-2:] == ["torch==2.13.0", "torchvision==0.1"]
    assert "--extra-index-url" not in cuda.torch
    own_cuda = split_lock(Lock(["torch==2.13.0+cu126"], []), cuda=True)
    assert "--extra-index-url https://download.pytorch.org/whl/cu126" in own_cuda.torch
    assert own_cuda.torch.endswith("torch==2.13.0+cu126\n")
    cpu = split_lock(Lock(["torch==2.13.0+cu126", "triton==3.0"], []), cuda=False)
    assert cpu.pinned == "" and cpu.torch.endswith("torch==2.13.0+cpu\n")


def test_the_command_line_refuses_a_non_empty_folder_in_one_line(
    project: Path, built: Path, cli, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = cli("container", run_of(project), "-o", taken)
    assert result.exit_code == EXIT_BAD_PATH
    assert result.output.strip().splitlines() == [
        f"error: -o {taken} exists and is not empty: pass --force to replace it"
    ]
    assert (taken / "notes.txt").read_text() == "mine"


def test_force_replaces_the_folder_once_the_new_context_is_complete(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ctx"
    out.mkdir()
    (out / "old.txt").write_text("old")

    def failing(*args: object) -> None:
        raise RuntimeError("the wheel build broke")

    monkeypatch.setattr(context_module, "ginpipe_for_image", failing)
    with pytest.raises(RuntimeError):
        context_module.write_context(run_of(project), out, force=True)
    assert (out / "old.txt").read_text() == "old"  # untouched by the failed attempt
    assert [p.name for p in tmp_path.iterdir()] == ["ctx"]  # no temp folder left
    monkeypatch.undo()
    context_module.write_context(run_of(project), out, force=True)
    assert not (out / "old.txt").exists() and (out / "Dockerfile").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ctx"]


def test_a_changed_module_is_refused_unless_allowed(project: Path, tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(project, changed, ignore=shutil.ignore_patterns("build"))
    module = changed / "mine" / "models.py"
    entry = module_entry(module, "mine.models", "mine/models.py")
    lock = with_record(environment_lock(), modules=[entry])
    (run_of(changed) / "environment.txt").write_text(lock)
    module.write_text(MODULE + "# edited after the run\n")
    with pytest.raises(ConfigError, match=r"the run's module mine.models \(.*\) changed since"):
        context_module.write_context(run_of(changed), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    module.unlink()
    with pytest.raises(ConfigError, match=r"the run's module mine\.models is gone from"):
        context_module.write_context(run_of(changed), tmp_path / "out", allow_changed=True)


def test_ginpipe_changed_since_the_run_is_refused_unless_allowed(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    monkeypatch.setattr(wheel_module, "source_digest", lambda root: "another digest")
    result = cli("container", run_of(project), "-o", tmp_path / "out")
    assert result.exit_code == EXIT_USAGE
    assert "error: ginpipe's source in " in result.output
    assert "changed since the run" in result.output and "--allow-changed" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no model", "has no model/model.json"),
        ("old lock", "a plain list of versions from before locks recorded"),
        ("no lock", "has no environment.txt"),
    ],
)
def test_runs_a_context_cannot_come_from_are_refused(
    project: Path, tmp_path: Path, breakage: str, message: str
) -> None:
    run = make_run(tmp_path, "numpy==2.0\ntorch==2.13.0+cpu\n")
    if breakage == "no model":
        (run / "model" / "model.json").unlink()
    elif breakage == "no lock":
        (run / "environment.txt").unlink()
    with pytest.raises(ConfigError, match=message) as error:
        context_module.write_context(run, tmp_path / "out")
    assert getattr(error.value, "exit_code", None) == EXIT_USAGE
    assert not (tmp_path / "out").exists()


def test_an_output_inside_the_run_or_holding_it_is_refused(project: Path) -> None:
    run = run_of(project)
    for out in (run / "ctx", project / "experiments"):
        with pytest.raises(ConfigError, match="holds or is inside the run directory"):
            context_module.write_context(run, out, force=True)
    assert (run / "config.gin").is_file()


def test_a_ginpipe_installed_from_a_wheel_is_copied_if_unchanged(
    built: Path, tmp_path: Path
) -> None:
    source = built / "wheels" / "ginpipe_ml-0.1.0-py3-none-any.whl"
    wheel = tmp_path / "dist" / source.name
    wheel.parent.mkdir()
    shutil.copy(source, wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    origin = {"kind": "wheel", "version": "0.1.0", "url": wheel.as_uri(), "sha256": digest}
    found = wheel_module.ginpipe_for_image(origin, tmp_path / "wheels", allow_changed=False)
    assert found.wheel == tmp_path / "wheels" / wheel.name
    assert found.wheel.read_bytes() == wheel.read_bytes()
    assert found.spec == f"wheels/{wheel.name}[serve]"
    with pytest.raises(ConfigError, match="the wheel ginpipe was installed from changed since"):
        wheel_module.ginpipe_for_image({**origin, "sha256": "0" * 64}, tmp_path / "w", False)
    wheel.unlink()
    with pytest.raises(ConfigError, match="the wheel ginpipe was installed from is gone"):
        wheel_module.ginpipe_for_image(origin, tmp_path / "w", False)


def test_a_released_ginpipe_is_installed_by_its_version(tmp_path: Path) -> None:
    found = wheel_module.ginpipe_for_image({"kind": "index", "version": "0.1.0"}, tmp_path, False)
    assert found.wheel is None
    assert found.spec in ("ginpipe-ml==0.1.0", "ginpipe-ml[serve]==0.1.0")
    assert not list(tmp_path.iterdir())
