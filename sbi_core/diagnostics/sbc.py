"""Simulation-based calibration (SBC): rank statistics and their uniformity tests.

For ``theta ~ p(theta)``, ``x ~ p(x | theta)`` and ``S`` samples of a calibrated
posterior ``q(theta | x)``, the rank of ``theta`` among the samples is uniform on
``{0, ..., S}``, parameter by parameter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from sbi_core.lazy import is_tensor

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["sbc_ranks", "sbc_uniformity", "sbc_rank_histogram", "sbc_default_num_bins"]

# Fixed so that the jittered KS test gives the same p-value for the same ranks.
_JITTER_SEED = 0


def _as_numpy(array: Tensor | NDArray, name: str) -> NDArray:
    if is_tensor(array):
        return array.detach().cpu().numpy()
    if isinstance(array, np.ndarray):
        return array
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(array).__name__}")


def sbc_ranks(theta_true: Tensor | NDArray, posterior_samples: Tensor | NDArray) -> NDArray[np.int64]:
    r"""Returns the SBC rank of each true parameter among its posterior samples.

    The rank is the number of posterior samples strictly below the true value,
    an integer in ``{0, ..., S}``.

    Arguments:
        theta_true: The true parameters of ``N`` simulations, shape ``[N, d]``.
        posterior_samples: ``S`` posterior samples for each simulation's
            observation, shape ``[N, S, d]``.

    Returns:
        The ranks, shape ``[N, d]``, dtype int64.

    Example:
        >>> theta = np.array([[0.5]])
        >>> samples = np.array([[[0.1], [0.7], [0.3]]])
        >>> sbc_ranks(theta, samples)
        array([[2]])

    References:
        | Validating Bayesian Inference Algorithms with Simulation-Based Calibration (Talts et al., 2018)
        | https://arxiv.org/abs/1804.06788
    """
    theta = _as_numpy(theta_true, "theta_true")
    samples = _as_numpy(posterior_samples, "posterior_samples")
    if theta.ndim != 2:
        raise ValueError(f"theta_true: expected shape [N, d], got {list(theta.shape)}")
    if samples.ndim != 3 or samples.shape[0] != theta.shape[0] or samples.shape[2] != theta.shape[1]:
        raise ValueError(
            f"posterior_samples: expected shape [N, S, d] = [{theta.shape[0]}, S, {theta.shape[1]}], "
            f"got {list(samples.shape)}"
        )
    return np.sum(samples < theta[:, None, :], axis=1, dtype=np.int64)


def sbc_default_num_bins(num_simulations: int, num_samples: int) -> int:
    """Returns the default number of rank-histogram bins.

    At least about 5 expected counts per bin (so the chi-square approximation
    holds), at most 20 bins, and no more bins than possible rank values.

    Arguments:
        num_simulations: The number ``N`` of ranks per parameter.
        num_samples: The number ``S`` of posterior samples each rank was taken among.

    Returns:
        The number of bins, at least 1.

    Example:
        >>> sbc_default_num_bins(1000, 100)
        20
        >>> sbc_default_num_bins(50, 100)
        10
    """
    return max(1, min(20, num_simulations // 5, num_samples + 1))


def sbc_rank_histogram(
    ranks: NDArray, num_samples: int, num_bins: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Bins ranks into a histogram whose bins hold whole rank values.

    The ``S + 1`` possible ranks rarely split evenly into ``B`` bins, so bins
    may hold different numbers of rank values; the expected probability of each
    bin under uniformity accounts for that.

    Arguments:
        ranks: SBC ranks, shape ``[N, d]``, values in ``{0, ..., num_samples}``.
        num_samples: The number ``S`` of posterior samples the ranks were taken among.
        num_bins: The number of bins ``B``; by default :func:`sbc_default_num_bins`.

    Returns:
        ``(counts, edges, probabilities)``: counts of shape ``[B, d]``; integer
        rank edges of shape ``[B + 1]`` (bin ``b`` holds ranks
        ``edges[b] <= r < edges[b + 1]``); expected bin probabilities of shape ``[B]``.

    Example:
        >>> counts, edges, p = sbc_rank_histogram(np.array([[0], [1], [2], [3]]), 3, 2)
        >>> counts[:, 0].tolist(), edges.tolist(), p.tolist()
        ([2, 2], [0, 2, 4], [0.5, 0.5])
    """
    ranks = _check_ranks(ranks, num_samples)
    num_values = num_samples + 1
    if num_bins is None:
        num_bins = sbc_default_num_bins(ranks.shape[0], num_samples)
    if not 1 <= num_bins <= num_values:
        raise ValueError(f"num_bins: expected an integer in [1, {num_values}], got {num_bins}")
    # Bin b holds ranks r with floor(r * B / (S + 1)) == b.
    edges = -((-np.arange(num_bins + 1) * num_values) // num_bins)  # ceil(b * (S + 1) / B)
    bin_index = ranks * num_bins // num_values
    counts = np.stack([np.bincount(bin_index[:, j], minlength=num_bins) for j in range(ranks.shape[1])], axis=1)
    probabilities = np.diff(edges) / num_values
    return counts.astype(np.int64), edges.astype(np.int64), probabilities


def sbc_uniformity(ranks: NDArray, num_samples: int, num_bins: int | None = None) -> dict[str, Any]:
    r"""Tests whether SBC ranks are uniform, parameter by parameter.

    Two tests per parameter:

    * Kolmogorov-Smirnov: the ranks are discrete, so each is spread uniformly
      over its cell, ``u = (r + U(0, 1)) / (S + 1)``, which is exactly ``U(0, 1)``
      under calibration; the jitter comes from a fixed seed, so the p-value is
      reproducible.
    * Chi-square on the rank histogram of :func:`sbc_rank_histogram`.

    Arguments:
        ranks: SBC ranks, shape ``[N, d]``, e.g. from :func:`sbc_ranks`.
        num_samples: The number ``S`` of posterior samples the ranks were taken among.
        num_bins: The number of histogram bins; by default :func:`sbc_default_num_bins`.

    Returns:
        A JSON-serialisable dict with ``ks_pvalues``, ``ks_statistics``,
        ``chi2_pvalues``, ``chi2_statistics`` (lists of length ``d``),
        ``min_ks_pvalue``, ``min_chi2_pvalue`` (floats), ``num_bins``,
        ``num_simulations`` and ``num_samples`` (ints).

    Example:
        >>> ranks = np.tile(np.arange(11), 20)[:, None]
        >>> sbc_uniformity(ranks, num_samples=10)["chi2_pvalues"]
        [1.0]

    References:
        | Validating Bayesian Inference Algorithms with Simulation-Based Calibration (Talts et al., 2018)
        | https://arxiv.org/abs/1804.06788
    """
    ranks = _check_ranks(ranks, num_samples)
    counts, _, probabilities = sbc_rank_histogram(ranks, num_samples, num_bins)
    num_simulations, dim = ranks.shape

    rng = np.random.default_rng(_JITTER_SEED)
    jittered = (ranks + rng.uniform(size=ranks.shape)) / (num_samples + 1)
    ks = [stats.kstest(jittered[:, j], "uniform") for j in range(dim)]

    expected = num_simulations * probabilities
    if counts.shape[0] > 1:
        chi2 = [stats.chisquare(counts[:, j], expected) for j in range(dim)]
        chi2_statistics = [float(c.statistic) for c in chi2]
        chi2_pvalues = [float(c.pvalue) for c in chi2]
    else:  # one bin carries no information
        chi2_statistics, chi2_pvalues = [0.0] * dim, [1.0] * dim

    ks_pvalues = [float(k.pvalue) for k in ks]
    return {
        "ks_pvalues": ks_pvalues,
        "ks_statistics": [float(k.statistic) for k in ks],
        "chi2_pvalues": chi2_pvalues,
        "chi2_statistics": chi2_statistics,
        "min_ks_pvalue": min(ks_pvalues),
        "min_chi2_pvalue": min(chi2_pvalues),
        "num_bins": int(counts.shape[0]),
        "num_simulations": int(num_simulations),
        "num_samples": int(num_samples),
    }


def _check_ranks(ranks: NDArray, num_samples: int) -> NDArray[np.int64]:
    ranks = np.asarray(_as_numpy(ranks, "ranks"))
    if ranks.ndim != 2 or ranks.shape[0] == 0:
        raise ValueError(f"ranks: expected shape [N, d] with N > 0, got {list(ranks.shape)}")
    if not np.issubdtype(ranks.dtype, np.integer):
        raise ValueError(f"ranks: expected integers, got dtype {ranks.dtype}")
    if num_samples < 1:
        raise ValueError(f"num_samples: expected a positive integer, got {num_samples}")
    if ranks.min() < 0 or ranks.max() > num_samples:
        raise ValueError(f"ranks: expected values in [0, {num_samples}], got [{ranks.min()}, {ranks.max()}]")
    return ranks.astype(np.int64)
