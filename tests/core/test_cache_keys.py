"""Cache keys of the shipped configs stay what they were: a run made before a refactor of
the engine is still reused after it. Task code and library versions are held fixed here (the
code fingerprint has its own tests in ``tests/core/test_fingerprint.py``), so what is pinned is
how the plan derives each key: selectors, scopes, bound parameters with defaults, and the
keys of the inputs."""

from __future__ import annotations

from typing import Any

import pytest

from ginpipe.core import fingerprint
from ginpipe.core.plan import plan
from ginpipe.runs.request import RunRequest
from ginpipe.runs.runner import prepare

CASES: dict[str, tuple[list[str], list[str]]] = {
    "default": (["base", "models/resnet"], []),
    "mlp_mods": (["base", "models/mlp"], ["LR=0.01", "Trainer.max_epochs=3"]),
    "logreg": (["base", "models/logreg"], []),
    "compare": (["compare"], []),
    "wine_forest": (["base", "data/wine", "models/random_forest"], []),
}

EXPECTED: dict[str, dict[str, str]] = {
    "default": {
        "seed_everything": "cb1f5d5d3be7a6d34f6df0303a15e7f9b068330a7b20f7f60366e519961c071c",
        "load_sklearn": "82cd13985b55783f24866b5248c7561f9e7ba926a976d00e2628b2090740b18b",
        "split_dataset": "0628c016e786a43285f8f2f2e497b278528fe06dfff6e8222dc50036d16c95c7",
        "make_features": "30aa2b4560ccdc5f98f3807c1f778354569bead63b96e209dff117b75a2be091",
        "fit": "79d3b4ad75cbd49079551f21e5af73cbb7da57b87a9f08a295e23d64d313aeb5",
        "evaluate": "a84b135406240793522d2f4aa84648f4a253010d2752cced02f573fd16204095",
    },
    "mlp_mods": {
        "seed_everything": "cb1f5d5d3be7a6d34f6df0303a15e7f9b068330a7b20f7f60366e519961c071c",
        "load_sklearn": "82cd13985b55783f24866b5248c7561f9e7ba926a976d00e2628b2090740b18b",
        "split_dataset": "0628c016e786a43285f8f2f2e497b278528fe06dfff6e8222dc50036d16c95c7",
        "make_features": "30aa2b4560ccdc5f98f3807c1f778354569bead63b96e209dff117b75a2be091",
        "fit": "3a378cbd0dfa599647bcf52c34761bd2df0f4af4710105be1a34ff7efa8dac9e",
        "evaluate": "351bc95a4178b21703d8b84a5302b0cd9f5ccc27b5382a9efb9495554a9674cb",
    },
    "logreg": {
        "seed_everything": "cb1f5d5d3be7a6d34f6df0303a15e7f9b068330a7b20f7f60366e519961c071c",
        "load_sklearn": "82cd13985b55783f24866b5248c7561f9e7ba926a976d00e2628b2090740b18b",
        "split_dataset": "0628c016e786a43285f8f2f2e497b278528fe06dfff6e8222dc50036d16c95c7",
        "make_features": "30aa2b4560ccdc5f98f3807c1f778354569bead63b96e209dff117b75a2be091",
        "fit_sklearn": "15804a200a8e31a41a31ba1a33c794282be37721b954ca43298160196c60225b",
        "evaluate_sklearn": "1c12c78049e88b834c1a89ccdb1c7ce17047fb651176d565cf773fc8bd790bdc",
    },
    "compare": {
        "seed_everything": "cb1f5d5d3be7a6d34f6df0303a15e7f9b068330a7b20f7f60366e519961c071c",
        "load_sklearn": "82cd13985b55783f24866b5248c7561f9e7ba926a976d00e2628b2090740b18b",
        "split_dataset": "0628c016e786a43285f8f2f2e497b278528fe06dfff6e8222dc50036d16c95c7",
        "make_features": "30aa2b4560ccdc5f98f3807c1f778354569bead63b96e209dff117b75a2be091",
        "logreg/fit_sklearn": "8ac27324914b0dff5cb03a8cef3d71839c1844311d449d6bdb470e3dc8aae480",
        "logreg/evaluate_sklearn": "34c45f0e2f9ae11811543679d65c9f6a2ced3571d79b3035e2faa744ffe16e3a",
        "forest/fit_sklearn": "c40806e51ff2944ed44c2a82f43d975b2134d668d15cd9804fbb50958df20549",
        "forest/evaluate_sklearn": "5a63f9583c73adcb504581aa3be266d097e46e1ce8fd63a6ae9d9504bb25cadb",
        "resnet/fit": "96cb6c1c15eaaa0049af16444a6b1f49bc512d6e48b383fabd707599367d2245",
        "resnet/evaluate": "bf8beefb0331cd51d517f235fc63b8228ab2da1a52145ad4a67f15c72762650c",
        "compare_models": "c395493a26d9df3e41a206031ca0367aa94c278b35bec9731b482aaa12f215dd",
    },
    "wine_forest": {
        "seed_everything": "cb1f5d5d3be7a6d34f6df0303a15e7f9b068330a7b20f7f60366e519961c071c",
        "load_sklearn": "832ca8e0dc52299f0240547cc0cc5b4dbacdfb101a9944ea839f1445256edd63",
        "split_dataset": "bf9e35418f7db54f2abb6128f364319362fc86e85d4b2ac6ce5d9b75495bf25b",
        "make_features": "93b7bc151f9579f13f79e6a3e7ffb918778b8464292b23dae43f4dcd451a3e8c",
        "fit_sklearn": "f257f59affe5bfb1c6fc6cc42a4634852af7aef2e3180970394249be765ab710",
        "evaluate_sklearn": "4303e20ea28f2b005fbd472f0ff180e5e82b4b288c2b3774964fdc281a1c2c67",
    },
}


@pytest.fixture
def fixed_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint, "library_versions", lambda: {"pinned": "for-the-test"})
    monkeypatch.setattr(
        fingerprint, "code_fingerprint", lambda fn: f"{fn.__module__}.{fn.__qualname__}"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_shipped_config_keys_unchanged(case: str, fixed_code: Any) -> None:
    files, mods = CASES[case]
    prepared = prepare(RunRequest(files=files, mods=mods))
    keys = {step.name: step.key for step in plan(prepared.steps, None)}
    assert keys == EXPECTED[case]
