"""Benchmark-only building blocks for ginpipe configs (``import benchmarks.bench_tasks``).

* ``load_digits_jittered``: the bundled digits plus shifted, noisy copies, so the feature
  step has enough rows to be expensive.
* ``KernelPCADenoiser``: kernel-PCA denoising (project onto the leading components of an
  RBF kernel PCA fitted on train, map back to pixel space). A real preprocessing step, cubic
  in the number of train rows, that keeps the image width, so ResNet still gets 8x8 images.

Run the CLI from the repository root with the root on ``PYTHONPATH``.
"""

from __future__ import annotations

from typing import Any

import gin
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_digits
from sklearn.decomposition import KernelPCA

from ginpipe import task
from ginpipe.core.state import TaskView
from ginpipe.tasks.load import arrays_dataset

PIXEL_MAX = 16.0  # digits pixels run 0..16


@task(writes=("dataset",))
def load_digits_jittered(
    state: TaskView, *, copies: int = 3, noise: float = 1.0, seed: int = 0
) -> dict:
    """``copies`` versions of every digit as (N, 1, 8, 8) images: the original first, then
    copies shifted by up to one pixel with Gaussian noise of std ``noise`` (pixel units)."""
    bunch = load_digits()
    images = bunch.images.astype(np.float32)
    rng = np.random.default_rng(seed)
    versions = [images]
    for _ in range(copies - 1):
        dy, dx = rng.integers(-1, 2, size=2)
        shifted = np.roll(images, (int(dy), int(dx)), axis=(1, 2))
        noisy = shifted + rng.normal(0.0, noise, size=shifted.shape).astype(np.float32)
        versions.append(np.clip(noisy, 0.0, PIXEL_MAX))
    features = np.concatenate(versions)[:, np.newaxis]
    labels = np.tile(np.asarray(bunch.target, dtype=np.int64), copies)
    meta = pd.DataFrame({"id": np.arange(len(labels), dtype=np.int64)})
    return {"dataset": arrays_dataset(features, labels, [str(c) for c in bunch.target_names], meta)}


class KernelPCADenoiser(TransformerMixin, BaseEstimator):
    """Reconstruct each row from the leading RBF kernel-PCA components fitted on train.

    Args:
        n_components: components kept; fewer removes more noise (and detail).
        gamma: RBF kernel coefficient (default 1 / n_features).
        alpha: ridge penalty of the learned inverse map back to input space.
    """

    def __init__(self, n_components: int = 32, gamma: float | None = None, alpha: float = 1e-2):
        self.n_components = n_components
        self.gamma = gamma
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: Any = None) -> KernelPCADenoiser:
        self.kpca_ = KernelPCA(
            n_components=self.n_components,
            kernel="rbf",
            gamma=self.gamma,
            alpha=self.alpha,
            fit_inverse_transform=True,
            eigen_solver="dense",
        ).fit(X)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.kpca_.inverse_transform(self.kpca_.transform(X)).astype(np.float32)


gin.external_configurable(KernelPCADenoiser, module="benchmarks.bench_tasks")
