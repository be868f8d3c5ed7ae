"""Checks without truth: does a population simulated from the fitted source look like the observed one?

On real data the true source is unknown, but the fitted source predicts the
observed population: simulate from it and compare, in observation space, with a
classifier two-sample test (accuracy and ROC AUC; 0.5 means the classifier cannot
tell them apart) and per feature, with two-sample Kolmogorov-Smirnov tests and the
means and standard deviations side by side (with standard errors).

References:
    | Neural Empirical Bayes: Source Distribution Estimation and its Applications to
    | Simulation-Based Inference (Vandegar et al., 2021) https://arxiv.org/abs/2011.05836
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from sbi_core.diagnostics.c2st import c2st

__all__ = ["population_checks", "feature_checks", "neb_roc_auc"]


def feature_checks(observed: NDArray, regenerated: NDArray) -> list[dict[str, Any]]:
    """Per feature of x (flattened): means and standard deviations with standard errors, KS test.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> checks = feature_checks(rng.normal(size=(500, 2)), rng.normal(size=(800, 2)))
        >>> [round(c["ks_pvalue"], 2) > 0.01 for c in checks]
        [True, True]
    """
    observed = observed.reshape(len(observed), -1)
    regenerated = regenerated.reshape(len(regenerated), -1)
    checks = []
    for j in range(observed.shape[1]):
        a, b = observed[:, j].astype(np.float64), regenerated[:, j].astype(np.float64)
        ks = stats.ks_2samp(a, b)
        checks.append({
            "feature": j,
            "observed_mean": float(a.mean()),
            "observed_mean_stderr": float(a.std(ddof=1) / math.sqrt(len(a))),
            "regenerated_mean": float(b.mean()),
            "regenerated_mean_stderr": float(b.std(ddof=1) / math.sqrt(len(b))),
            "observed_std": float(a.std(ddof=1)),
            "regenerated_std": float(b.std(ddof=1)),
            "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
        })
    return checks


def population_checks(observed: NDArray, regenerated: NDArray, c2st_num_samples: int, seed: int) -> dict[str, Any]:
    """Observation-space C2ST (the observed population as reference) and the per-feature checks.

    Arguments:
        observed: The observed population ``[n, ...]``.
        regenerated: Simulations from the fitted source ``[m, ...]``.
        c2st_num_samples: At most this many of each set go into the C2ST (its run time).
        seed: Seeds the C2ST's classifier, folds and subsampling.

    Returns:
        ``{"c2st": {accuracy, stderr, roc_auc, num_samples_observed, num_samples_regenerated},
        "features": [...], "smallest_ks_pvalue": ...}``.
    """
    test = c2st(observed.reshape(len(observed), -1), regenerated.reshape(len(regenerated), -1),
                seed=seed, max_samples=c2st_num_samples)
    features = feature_checks(observed, regenerated)
    return {
        "c2st": {
            "accuracy": test.accuracy,
            "stderr": test.stderr,
            "roc_auc": test.roc_auc,
            "num_samples_observed": test.num_samples_a,
            "num_samples_regenerated": test.num_samples_b,
        },
        "features": features,
        "smallest_ks_pvalue": min(f["ks_pvalue"] for f in features),
    }


def neb_roc_auc(observed: NDArray, regenerated: NDArray, seed: int = 0) -> float:
    """The observation-space ROC AUC by the NEB paper's own protocol, for comparison with its numbers.

    As ``metrics/metrics.py`` of the paper's code does: an sklearn MLP with two hidden layers
    of ``10 d`` units, SGD, batch 100, at most 500 iterations, trained on a stratified 75%
    split (``train_test_split``, ``random_state=seed``) of the two sets without z-scoring;
    the ROC AUC of its probabilities on the held-out 25%. Our :func:`population_checks`
    uses the C2ST protocol (5-fold, z-scored) instead.

    References:
        | https://github.com/MaximeVandegar/NEB (metrics/metrics.py)
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    a, b = observed.reshape(len(observed), -1), regenerated.reshape(len(regenerated), -1)
    data = np.concatenate([a, b]).astype(np.float64)
    target = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    train_x, test_x, train_y, test_y = train_test_split(data, target, stratify=target, random_state=seed)
    dim = data.shape[1]
    classifier = MLPClassifier(hidden_layer_sizes=(10 * dim, 10 * dim), solver="sgd", batch_size=100,
                               max_iter=500, random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"):
        classifier.fit(train_x, train_y)
    return float(roc_auc_score(test_y, classifier.predict_proba(test_x)[:, 1]))
