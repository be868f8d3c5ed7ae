"""Classifier two-sample test (C2ST): can a classifier tell two sample sets apart?"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from sbi_core.lazy import is_tensor

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["C2STResult", "c2st"]


@dataclass(frozen=True)
class C2STResult:
    """The C2ST accuracy, its binomial standard error, the samples of each set it was computed on, and
    the same classifier's cross-validated ROC AUC (the score the neural-empirical-Bayes paper reports)."""

    accuracy: float
    stderr: float
    num_samples_a: int
    num_samples_b: int
    roc_auc: float


def _as_samples(samples: Tensor | NDArray, name: str) -> NDArray[np.floating]:
    if is_tensor(samples):
        samples = samples.detach().cpu().numpy()
    samples = np.asarray(samples)
    # Float32 stays float32, as sbibm's float32 tensors do: sklearn's MLP then trains in float32 too.
    if samples.dtype not in (np.float32, np.float64):
        samples = samples.astype(np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[0] < 2:
        raise ValueError(f"{name}: expected shape [n, d] with n >= 2, got {list(samples.shape)}")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"{name}: contains NaN or inf")
    return samples


def c2st(
    samples_a: Tensor | NDArray,
    samples_b: Tensor | NDArray,
    seed: int = 1,
    n_folds: int = 5,
    max_samples: int | None = None,
) -> C2STResult:
    r"""Returns the classifier two-sample test accuracy between two sample sets.

    The procedure of the sbibm benchmark (``sbibm.metrics.c2st`` with its
    defaults, as used for the published C2ST with ``X`` the reference
    samples): both sets are z-scored with the mean and standard deviation of
    ``samples_a``; an MLP classifier (two hidden layers of ``10 d`` ReLU units,
    Adam, at most 10000 iterations, otherwise sklearn's defaults) is trained to
    tell them apart, and its accuracy is averaged over shuffled ``n_folds``-fold
    cross-validation (``KFold``, not stratified), on one BLAS thread. About 0.5
    means indistinguishable, 1.0 perfectly separable.

    Every sample given is used. A classifier trained on fewer samples separates
    less, so the accuracy depends on the sample count: compare with a published
    value only at its count (10000 + 10000 in Lueckmann et al., 2021).

    Arguments:
        samples_a: Samples of one distribution, shape ``[n_a, d]``; the reference
            posterior when there is one, since it sets the z-scoring (sbibm's ``X``).
        samples_b: Samples of the other, e.g. the posterior estimate, shape ``[n_b, d]``.
        seed: Seeds the classifier, the folds and any subsampling (sbibm's default is 1).
        n_folds: The number of cross-validation folds.
        max_samples: If given, each set is randomly subsampled (without
            replacement) to at most this many samples, to bound the run time;
            the result reports the counts used.

    Returns:
        The mean cross-validated accuracy in ``[0, 1]`` (and ROC AUC, from the same
        fits); the accuracy's binomial standard error, :math:`\sqrt{a (1 - a) / (n_a + n_b)}`, as each sample is
        classified once, in its held-out fold; and the counts ``n_a``, ``n_b``
        of samples used.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 3.0
        >>> result = c2st(a, b)
        >>> result.accuracy > 0.9, result.num_samples_a, result.num_samples_b
        (True, 500, 500)

    References:
        | Revisiting Classifier Two-Sample Tests (Lopez-Paz & Oquab, 2017)
        | https://arxiv.org/abs/1610.06545
        | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
        | https://arxiv.org/abs/2101.04653
    """
    a = _as_samples(samples_a, "samples_a")
    b = _as_samples(samples_b, "samples_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"samples_b: expected {a.shape[1]} dimensions like samples_a, got {b.shape[1]}")
    if max_samples is not None and max_samples < n_folds:
        raise ValueError(f"max_samples: expected at least n_folds = {n_folds}, got {max_samples}")

    if max_samples is not None:
        rng = np.random.default_rng(seed)
        if a.shape[0] > max_samples:
            a = a[rng.choice(a.shape[0], max_samples, replace=False)]
        if b.shape[0] > max_samples:
            b = b[rng.choice(b.shape[0], max_samples, replace=False)]

    dtype = np.result_type(a, b)
    mean = a.mean(axis=0)
    std = a.std(axis=0, ddof=1)
    std[std < 1e-14] = 1.0  # a constant feature: leave it unscaled rather than divide by zero (as sbi does)
    data = ((np.concatenate([a, b]) - mean) / std).astype(dtype, copy=False)
    target = np.concatenate([np.zeros(a.shape[0]), np.ones(b.shape[0])])

    # here, not at import: sklearn costs seconds, and most steps that import the diagnostics never run a C2ST
    from sklearn.model_selection import KFold, cross_validate
    from sklearn.neural_network import MLPClassifier

    dim = a.shape[1]
    classifier = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * dim, 10 * dim),
        max_iter=10000,
        solver="adam",
        random_state=seed,
    )
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # One BLAS thread: the MLP's matrices are too small to gain from more (on 2 busy cores, 10000 + 10000
    # samples in 10-d took 314 s on one thread, 1919 s on two), and the thread count changes the
    # accuracy's last digits, which would make it depend on the machine.
    with threadpool_limits(limits=1, user_api="blas"):
        scores = cross_validate(classifier, data, target, cv=folds, scoring=("accuracy", "roc_auc"))
    accuracy = float(np.mean(scores["test_accuracy"]))
    num_a, num_b = a.shape[0], b.shape[0]
    stderr = math.sqrt(accuracy * (1 - accuracy) / (num_a + num_b))
    return C2STResult(accuracy, stderr, num_a, num_b, float(np.mean(scores["test_roc_auc"])))
