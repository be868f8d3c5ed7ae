"""Classifier two-sample test (C2ST): can a classifier tell two sample sets apart?

The published protocol (sbibm's ``c2st``: sklearn's ``MLPClassifier`` in shuffled
5-fold cross-validation) trains one small MLP per fold, one after another, in
Python loops: minutes per test at 10,000 samples per set. Here the same classifier,
optimiser and stopping rule are written in torch, and the MLPs of every fold of
every test train at once, as one batch of networks (``[models, batch, features]``
matrix products), on the CPU or the GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from sbi_core.lazy import is_tensor

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["C2STResult", "c2st", "c2st_many"]

HIDDEN_UNITS_PER_DIMENSION = 10  # sbibm's classifier: two hidden layers of 10 d units


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
    samples = np.asarray(samples, dtype=np.float64)
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
    Adam, at most 10000 epochs, otherwise sklearn's defaults) is trained to
    tell them apart, and its accuracy is averaged over shuffled ``n_folds``-fold
    cross-validation. About 0.5 means indistinguishable, 1.0 perfectly
    separable. See :func:`c2st_many` for the classifier and many tests at once.

    Every sample given is used. A classifier trained on fewer samples separates
    less, so the accuracy depends on the sample count: compare with a published
    value only at its count (10000 + 10000 in Lueckmann et al., 2021).

    Arguments:
        samples_a: Samples of one distribution, shape ``[n_a, d]``; the reference
            posterior when there is one, since it sets the z-scoring (sbibm's ``X``).
        samples_b: Samples of the other, e.g. the posterior estimate, shape ``[n_b, d]``.
        seed: Seeds the classifiers, the folds and any subsampling (sbibm's default is 1).
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
    return c2st_many(a[None], b[None], seed=seed, n_folds=n_folds)[0]


def c2st_many(
    samples_a: Tensor | NDArray,
    samples_b: Tensor | NDArray,
    seed: int = 1,
    n_folds: int = 5,
    device: str | None = None,
) -> list[C2STResult]:
    r"""Runs one C2ST per row of a batch of sample-set pairs, all classifiers trained at once.

    Per test, as sklearn's ``MLPClassifier`` in sbibm's ``c2st``: z-scoring by set
    ``a``; a shuffled ``n_folds``-fold split; per fold an MLP ``d -> 10 d -> 10 d -> 1``
    (ReLU; Glorot-uniform initialisation), trained on the other folds by Adam (learning
    rate 1e-3) in shuffled mini-batches of 200 with the binary cross-entropy plus
    sklearn's L2 penalty (``alpha`` = 1e-4), until its epoch's training loss has not
    improved by 1e-4 for more than 10 epochs (at most 10,000); accuracy (and ROC AUC)
    on the held-out fold, averaged over folds. The networks of every fold of every
    test form one batch; a network that has stopped keeps its weights of that epoch.
    Float32, as sbibm's float32 tensors. Accuracies agree with sklearn's within their
    standard error (``tests/test_diagnostics.py``), not to the last digit: the random
    streams differ.

    Arguments:
        samples_a: Shape ``[m, n_a, d]``: ``m`` reference sets (set ``a`` of each test).
        samples_b: Shape ``[m, n_b, d]``.
        seed: Seeds the folds, initialisations and shuffles.
        n_folds: Folds per test.
        device: Where to train (default: the CPU, or the device of a tensor given).

    Returns:
        One :class:`C2STResult` per test, in order.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(3, 400, 2))
        >>> shifts = np.array([0.0, 1.0, 4.0])[:, None, None]
        >>> [r.accuracy > 0.65 for r in c2st_many(a, rng.normal(size=(3, 400, 2)) + shifts)]
        [False, True, True]
    """
    import torch

    from sbi_core.diagnostics.mlp import BatchedMLP, fit_like_sklearn

    if device is None:
        device = samples_a.device if is_tensor(samples_a) else "cpu"
    a, b = (torch.as_tensor(np.asarray(s.detach().cpu() if is_tensor(s) else s, dtype=np.float64))
            for s in (samples_a, samples_b))
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(f"samples_a, samples_b: expected [m, n_a, d] and [m, n_b, d], got {list(a.shape)} and "
                         f"{list(b.shape)}")
    for name, samples in (("samples_a", a), ("samples_b", b)):
        if not torch.isfinite(samples).all():
            raise ValueError(f"{name}: contains NaN or inf")
    num_tests, num_a, dim = a.shape
    num = num_a + b.shape[1]
    if min(num_a, b.shape[1]) < 2 or num < 2 * n_folds:
        raise ValueError(f"samples_a, samples_b: too few samples ({num_a} and {b.shape[1]}) for {n_folds} folds")
    # z-scored in float64 by set a, as sbibm; a constant feature is left unscaled rather than divided by zero.
    mean, std = a.mean(dim=1, keepdim=True), a.std(dim=1, keepdim=True)
    std = torch.where(std < 1e-14, torch.ones_like(std), std)
    data = ((torch.cat([a, b], dim=1) - mean) / std).to(device=device, dtype=torch.float32)
    target = torch.cat([torch.zeros(num_a), torch.ones(b.shape[1])]).to(device)

    generator = torch.Generator().manual_seed(seed)
    folds = _fold_assignment(num_tests, num, n_folds, generator).to(device)  # [tests, num]
    network = BatchedMLP(num_tests * n_folds, dim, HIDDEN_UNITS_PER_DIMENSION * dim, generator, device)
    test_of_model = torch.arange(num_tests, device=device).repeat_interleave(n_folds)
    fold_of_model = torch.arange(n_folds, device=device).repeat(num_tests)
    training = folds[test_of_model] != fold_of_model[:, None]  # [models, num]
    model_data = data[test_of_model]  # [models, num, d]: each fold's network sees its own test's samples
    # One CPU thread: these matrices are too small to gain from more (on the busy 2-core machine, two
    # threads made a C2ST 4-5 times slower), and the result does not depend on the machine's core count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit_like_sklearn(network, model_data, target, training, generator)
        logits = torch.cat([network(model_data[:, i : i + 4096]) for i in range(0, num, 4096)], dim=1)
    finally:
        torch.set_num_threads(threads)
    held_out = ~training
    correct = ((logits > 0).float() == target).float()
    accuracy = ((correct * held_out).sum(1) / held_out.sum(1)).reshape(num_tests, n_folds).mean(1)
    auc = _roc_auc(logits.cpu(), target.cpu(), held_out.cpu()).reshape(num_tests, n_folds).mean(1)
    return [
        C2STResult(float(acc), math.sqrt(float(acc) * (1 - float(acc)) / num), num_a, b.shape[1], float(area))
        for acc, area in zip(accuracy.cpu(), auc)
    ]


def _fold_assignment(num_tests: int, num: int, n_folds: int, generator: torch.Generator) -> Tensor:
    """Per test, each sample's fold: a random permutation cut into folds of sizes as sklearn's KFold."""
    import torch

    sizes = torch.full((n_folds,), num // n_folds)
    sizes[: num % n_folds] += 1
    fold_at_position = torch.repeat_interleave(torch.arange(n_folds), sizes)
    permutations = torch.argsort(torch.rand(num_tests, num, generator=generator), dim=1)
    folds = torch.empty(num_tests, num, dtype=torch.long)
    folds.scatter_(1, permutations, fold_at_position.expand(num_tests, -1))
    return folds


def _roc_auc(scores: Tensor, target: Tensor, mask: Tensor) -> NDArray[np.float64]:
    """ROC AUC per row over the masked entries (the Mann-Whitney statistic, ties counted half)."""
    from scipy.stats import rankdata

    labels_all = target.numpy()
    areas = []
    for row_scores, row_mask in zip(scores.numpy(), mask.numpy()):
        labels = labels_all[row_mask]
        ranks = rankdata(row_scores[row_mask])
        positives = labels.sum()
        negatives = len(labels) - positives
        areas.append((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))
    return np.asarray(areas)
