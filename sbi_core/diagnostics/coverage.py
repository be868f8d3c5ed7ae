r"""Expected coverage of highest-posterior-density (HPD) regions, and a calibration verdict.

For a test simulation ``(theta_i, x_i)`` and ``S`` posterior samples, the HPD
credibility of the truth is the fraction of samples with a higher posterior
density than ``theta_i``: the truth lies in the HPD region of level ``alpha``
exactly when that fraction is at most ``alpha``. Over ``N`` test simulations the
empirical coverage at level ``alpha`` is the fraction of truths inside; for a
calibrated posterior it equals ``alpha`` and the count is Binomial(N, alpha).

Only density *ranks* within one observation enter, so an unnormalised
log-density (NLE's likelihood times prior, a ratio estimator's ``log r + log
prior``) serves as well as a normalised one.

References:
    | Truncated proposals for scalable and hassle-free simulation-based inference (Deistler et al., 2022)
    | https://arxiv.org/abs/2210.04815
    | Validating Bayesian Inference Algorithms with Simulation-Based Calibration (Talts et al., 2018)
    | https://arxiv.org/abs/1804.06788
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

__all__ = ["VERDICTS", "hpd_credibility", "expected_coverage", "coverage_band", "coverage_verdict"]

VERDICTS = ("calibrated", "conservative", "overconfident", "miscalibrated")


def hpd_credibility(log_density_true: NDArray, log_density_samples: NDArray) -> NDArray[np.float64]:
    """Returns the credibility level of the smallest HPD region that holds each truth.

    Arguments:
        log_density_true: The (unnormalised) posterior log-density at each true
            parameter, shape ``[N]``.
        log_density_samples: The same log-density at each observation's ``S``
            posterior samples, shape ``[N, S]``.

    Returns:
        The fraction of samples denser than the truth, shape ``[N]``, in ``[0, 1]``;
        uniform for a calibrated posterior.

    Example:
        >>> hpd_credibility(np.array([-1.0]), np.array([[0.0, -2.0, -0.5, -3.0]]))
        array([0.5])
    """
    true = np.asarray(log_density_true, dtype=np.float64)
    samples = np.asarray(log_density_samples, dtype=np.float64)
    if true.ndim != 1 or samples.ndim != 2 or samples.shape[0] != true.shape[0] or samples.shape[1] == 0:
        raise ValueError(
            f"log_density_samples: expected shape [N, S] = [{true.shape[0] if true.ndim == 1 else 'N'}, S] "
            f"with log_density_true [N]; got {list(samples.shape)} and {list(true.shape)}"
        )
    if np.isnan(true).any() or np.isnan(samples).any():
        raise ValueError("log densities: contain NaN")
    return np.mean(samples > true[:, None], axis=1)


def expected_coverage(credibility: NDArray, levels: NDArray) -> NDArray[np.float64]:
    """Returns the fraction of truths inside the HPD region of each credibility level.

    Arguments:
        credibility: The HPD credibility of each truth, shape ``[N]``, from :func:`hpd_credibility`.
        levels: Credibility levels in ``[0, 1]``, shape ``[L]``.

    Returns:
        The empirical coverage at each level, shape ``[L]``.

    Example:
        >>> expected_coverage(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0.5]))
        array([0.5])
    """
    credibility = np.asarray(credibility, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    return np.mean(credibility[None, :] <= levels[:, None], axis=1)


def coverage_band(num_simulations: int, levels: NDArray, confidence: float) -> tuple[NDArray, NDArray]:
    """Returns the band the empirical coverage of a calibrated posterior stays in.

    At each level the count of covered truths is Binomial(N, level); the band
    holds its central binomial interval, Bonferroni-corrected over the ``L``
    levels so that a calibrated posterior stays inside at *every* level with
    probability at least ``confidence``.

    Arguments:
        num_simulations: ``N``, the number of test simulations.
        levels: The credibility levels, shape ``[L]``, in ``(0, 1)``.
        confidence: The joint probability of staying inside, e.g. 0.95.

    Returns:
        ``(low, high)``, coverage fractions of shape ``[L]``.

    Example:
        >>> low, high = coverage_band(1000, np.array([0.5]), 0.95)
        >>> float(low[0]), float(high[0])
        (0.469, 0.531)
    """
    levels = np.asarray(levels, dtype=np.float64)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a probability in (0, 1), got {confidence}")
    tail = (1 - confidence) / (2 * len(levels))
    low = stats.binom.ppf(tail, num_simulations, levels) / num_simulations
    high = stats.binom.isf(tail, num_simulations, levels) / num_simulations
    return low, high


def coverage_verdict(credibility: NDArray, num_levels: int = 20, confidence: float = 0.95) -> dict[str, Any]:
    """Expected HPD coverage on a grid of levels, its band, and a verdict.

    The verdict is ``overconfident`` when the coverage falls below the band at
    some level (truths fall outside regions more often than stated: too narrow
    or biased), ``conservative`` when it rises above (too wide), ``miscalibrated``
    when both happen, and ``calibrated`` otherwise. Under calibration the
    verdict is wrong with probability at most ``1 - confidence``.

    Arguments:
        credibility: The HPD credibility of each truth, shape ``[N]``.
        num_levels: The grid is ``1/num_levels, ..., (num_levels-1)/num_levels``.
        confidence: The confidence of the band and verdict.

    Returns:
        A JSON-serialisable dict: ``levels``, ``coverage``, ``band_low``,
        ``band_high`` (lists), ``confidence``, ``num_simulations``,
        ``max_deviation`` (largest ``|coverage - level|``) and ``verdict``.

    Example:
        >>> credibility = np.random.default_rng(0).uniform(size=1000)
        >>> coverage_verdict(credibility)["verdict"]
        'calibrated'
    """
    credibility = np.asarray(credibility, dtype=np.float64)
    if credibility.ndim != 1 or credibility.size == 0:
        raise ValueError(f"credibility: expected shape [N] with N > 0, got {list(credibility.shape)}")
    if num_levels < 2:
        raise ValueError(f"num_levels: expected at least 2, got {num_levels}")
    levels = np.arange(1, num_levels) / num_levels
    coverage = expected_coverage(credibility, levels)
    low, high = coverage_band(credibility.size, levels, confidence)
    below, above = bool((coverage < low).any()), bool((coverage > high).any())
    verdict = VERDICTS[3] if below and above else VERDICTS[2] if below else VERDICTS[1] if above else VERDICTS[0]
    return {
        "levels": levels.tolist(),
        "coverage": coverage.tolist(),
        "band_low": low.tolist(),
        "band_high": high.tolist(),
        "confidence": confidence,
        "num_simulations": int(credibility.size),
        "max_deviation": float(np.max(np.abs(coverage - levels))),
        "verdict": verdict,
    }
