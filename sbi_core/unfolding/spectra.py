"""Binned unfolded spectra per parameter, with their bands, as rows of a table.

Every spectrum is a probability density per bin (it integrates to one over the
bins), so the unfolded source, its bands, the truth, the training prior and IBU's
efficiency-corrected counts are on one scale. Bands are the central 68% of the
refits' densities in each bin: bootstrap resamples of the population (``stat``)
and estimators trained on resampled simulations (``estimator``), reported apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.distributions import Distribution

from sbi_core.unfolding.source import support_of

__all__ = ["BAND_QUANTILES", "binned_density", "binned_spectra", "band_coverage", "chi2_per_bin", "spectrum_edges", "parameter_edges"]

_PRIOR_DRAWS = 100_000
BAND_QUANTILES = (0.16, 0.84)  # a 68% band, one standard deviation for a Gaussian spread


def binned_density(values: NDArray, edges: NDArray) -> NDArray:
    """The histogram of ``values`` as a density over ``edges`` (mass outside the edges is dropped).

    Example:
        >>> binned_density(np.array([0.1, 0.2, 0.7]), np.array([0.0, 0.5, 1.0]))
        array([1.33333333, 0.66666667])
    """
    counts, _ = np.histogram(values, bins=edges)
    total = counts.sum()
    if total == 0:
        return np.zeros(len(edges) - 1)
    return counts / total / np.diff(edges)


def _band(samples: Sequence[NDArray], column: int, edges: NDArray) -> tuple[NDArray, NDArray] | tuple[None, None]:
    if not samples:
        return None, None
    densities = np.stack([binned_density(s[:, column], edges) for s in samples])
    low, high = np.quantile(densities, BAND_QUANTILES, axis=0)
    return low, high


def binned_spectra(
    parameter_names: Sequence[str],
    edges: Sequence[NDArray],
    unfolded: NDArray,
    bootstrap: Sequence[NDArray] = (),
    replicas: Sequence[NDArray] = (),
    truth: NDArray | None = None,
    prior: NDArray | None = None,
    ibu: dict[str, dict[str, NDArray]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (parameter, bin): the unfolded density and every comparison that exists.

    Arguments:
        parameter_names: One per column of the sample arrays.
        edges: Bin edges per parameter.
        unfolded: Samples of the fitted source ``[S, d]``.
        bootstrap: Samples of each refit on a bootstrap resample of the population.
        replicas: Samples of each fit with an estimator trained on resampled simulations.
        truth: Samples of the true source (closure tests).
        prior: Samples of the training prior.
        ibu: Per parameter name, IBU's ``density`` and ``density_err`` per bin.

    Returns:
        Rows with ``parameter, bin_low, bin_high, unfolded`` and, where given,
        ``stat_low, stat_high, estimator_low, estimator_high, truth, prior, ibu, ibu_err``.
    """
    rows = []
    for column, (name, bins) in enumerate(zip(parameter_names, edges)):
        bins = np.asarray(bins, dtype=np.float64)
        table = {"unfolded": binned_density(unfolded[:, column], bins)}
        table["stat_low"], table["stat_high"] = _band(bootstrap, column, bins)
        table["estimator_low"], table["estimator_high"] = _band(replicas, column, bins)
        if truth is not None:
            table["truth"] = binned_density(truth[:, column], bins)
        if prior is not None:
            table["prior"] = binned_density(prior[:, column], bins)
        if ibu is not None and name in ibu:
            table["ibu"], table["ibu_err"] = ibu[name]["density"], ibu[name]["density_err"]
        for i in range(len(bins) - 1):
            row = {"parameter": name, "bin_low": float(bins[i]), "bin_high": float(bins[i + 1])}
            row.update({key: float(value[i]) for key, value in table.items() if value is not None})
            rows.append(row)
    return rows


def chi2_per_bin(estimate: NDArray, error: NDArray, truth: NDArray) -> float:
    """Sum of ``((estimate - truth) / error)^2`` over bins with a positive error, divided by their number."""
    error = np.asarray(error, dtype=np.float64)
    used = error > 0
    if not used.any():
        return float("nan")
    return float(np.mean(((np.asarray(estimate)[used] - np.asarray(truth)[used]) / error[used]) ** 2))


def band_coverage(low: NDArray, high: NDArray, truth: NDArray) -> float:
    """The fraction of bins whose band ``[low, high]`` holds the truth."""
    return float(np.mean((np.asarray(low) <= truth) & (truth <= np.asarray(high))))


def spectrum_edges(support: dict[str, Any], prior_samples: NDArray, bins: int) -> list[NDArray]:
    """Equal-width bin edges per parameter: over the prior's box, or over the central 99% of its
    samples for an unbounded prior. IBU's causes and every spectrum share them.

    Example:
        >>> spectrum_edges({"kind": "box", "low": [0.0], "high": [1.0]}, np.zeros((1, 1)), 4)
        [array([0.  , 0.25, 0.5 , 0.75, 1.  ])]
    """
    if support["kind"] == "box":
        return [np.linspace(low, high, bins + 1) for low, high in zip(support["low"], support["high"])]
    low, high = np.quantile(prior_samples, [0.005, 0.995], axis=0)
    return [np.linspace(a, b, bins + 1) for a, b in zip(low, high)]


def parameter_edges(prior: Distribution, bins: int) -> list[NDArray]:
    """:func:`spectrum_edges` of a prior (drawn with a fixed seed, so every step bins alike)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        prior_samples = prior.sample((_PRIOR_DRAWS,)).numpy()
    return spectrum_edges(support_of(prior), prior_samples, bins)
