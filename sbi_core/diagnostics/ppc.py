r"""Posterior predictive checks: do simulations at posterior samples look like the observation?

Simulating ``x_k ~ p(x | theta_k)`` at posterior samples ``theta_k`` gives the
posterior predictive distribution. Two summaries compare it with the observation
``x_o``, feature by feature standardised by the predictive mean and standard
deviation:

* the distance of ``x_o`` from the predictive mean against the distances of the
  predictive draws themselves, with the predictive p-value
  ``P(d(x_k) >= d(x_o))`` (small: the observation is atypical of its posterior);
* per-feature two-sided predictive p-values.

References:
    | Posterior predictive assessment of model fitness via realized discrepancies (Gelman et al., 1996)
    | https://www.jstor.org/stable/24306036
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["posterior_predictive_check"]


def posterior_predictive_check(observation: NDArray, predictive: NDArray) -> dict[str, Any]:
    """Compares an observation with simulations at posterior samples.

    Arguments:
        observation: The observation ``x_o``, any shape; flattened to ``D`` features.
        predictive: ``K`` posterior predictive simulations ``[K, *x_shape]``; rows with
            NaN/inf are dropped and counted.

    Returns:
        A JSON-serialisable dict: ``distance_observed`` (the standardised
        Euclidean distance of ``x_o`` from the predictive mean),
        ``distances_predictive`` (the same for each draw, list of ``K``),
        ``distance_pvalue``, ``feature_pvalues`` (list of ``D``),
        ``min_feature_pvalue``, ``predictive_mean``, ``predictive_std``,
        ``predictive_quantiles`` (the 5%, 50% and 95% quantiles, 3 lists of ``D``),
        ``x_observed`` (list of ``D``), ``num_simulations`` (valid draws used) and
        ``num_invalid`` (draws with NaN/inf, dropped like invalid training simulations).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> check = posterior_predictive_check(np.zeros(3), rng.normal(size=(500, 3)))
        >>> check["distance_pvalue"] > 0.05
        True
    """
    predictive = np.asarray(predictive, dtype=np.float64)
    observed = np.asarray(observation, dtype=np.float64).reshape(-1)
    if predictive.ndim < 2:
        raise ValueError(f"predictive: expected shape [K, ...], got {list(predictive.shape)}")
    predictive = predictive.reshape(predictive.shape[0], -1)
    if predictive.shape[1] != observed.size:
        raise ValueError(f"observation: expected {predictive.shape[1]} features like the predictive draws, got {observed.size}")
    valid = np.isfinite(predictive).all(axis=1)
    num_invalid = int((~valid).sum())
    predictive = predictive[valid]
    if predictive.shape[0] < 2:
        raise ValueError(f"predictive: expected at least 2 valid (finite) simulations, got {predictive.shape[0]}")

    mean, std = predictive.mean(axis=0), predictive.std(axis=0, ddof=1)
    std = np.where(std > 1e-12, std, 1.0)  # a constant feature: compare unscaled
    distance_observed = float(np.linalg.norm((observed - mean) / std))
    distances = np.linalg.norm((predictive - mean) / std, axis=1)
    num = predictive.shape[0]
    distance_pvalue = (1 + np.sum(distances >= distance_observed)) / (num + 1)
    below = (1 + np.sum(predictive <= observed, axis=0)) / (num + 1)
    above = (1 + np.sum(predictive >= observed, axis=0)) / (num + 1)
    feature_pvalues = np.minimum(1.0, 2 * np.minimum(below, above))
    return {
        "distance_observed": distance_observed,
        "distances_predictive": distances.tolist(),
        "distance_pvalue": float(distance_pvalue),
        "feature_pvalues": feature_pvalues.tolist(),
        "min_feature_pvalue": float(feature_pvalues.min()),
        "predictive_mean": mean.tolist(),
        "predictive_std": predictive.std(axis=0, ddof=1).tolist(),
        "predictive_quantiles": np.quantile(predictive, [0.05, 0.5, 0.95], axis=0).tolist(),
        "x_observed": observed.tolist(),
        "num_simulations": int(num),
        "num_invalid": num_invalid,
    }
