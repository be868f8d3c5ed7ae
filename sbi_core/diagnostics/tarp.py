r"""Tests of Accuracy with Random Points (TARP): expected coverage without densities.

For a test simulation ``(theta_i, x_i)``, a reference point ``r_i`` and ``S``
posterior samples, the TARP rank is the number of samples closer to ``r_i``
than the truth. Under calibration the truth is exchangeable with the samples,
so the rank is uniform on ``{0, ..., S}`` and the expected coverage probability
(ECP), the fraction of ``rank / S < alpha``, equals ``alpha``. ECP below the
diagonal in the upper half (a negative area ``ATC``) means too-narrow posteriors,
above it too-wide ones. Only samples enter, so every method is checked alike.

References:
    | Sampling-Based Accuracy Testing of Posterior Estimators for General Inference (Lemos et al., 2023)
    | https://arxiv.org/abs/2302.03026
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sbi_core.diagnostics.sbc import sbc_uniformity

__all__ = ["tarp_uniform_references", "tarp_ranks", "tarp_ecp", "tarp_atc", "tarp"]


def tarp_uniform_references(theta_true: NDArray, rng: np.random.Generator) -> NDArray[np.float64]:
    """Draws one reference point per test simulation, uniform in the bounding box of the truths.

    This is the default of the TARP paper and of sbi's ``run_tarp``.

    Arguments:
        theta_true: The true parameters ``[N, d]``.
        rng: The random generator.

    Returns:
        The reference points ``[N, d]``.

    Example:
        >>> theta = np.array([[0.0, 1.0], [1.0, 3.0]])
        >>> refs = tarp_uniform_references(theta, np.random.default_rng(0))
        >>> bool(((refs >= [0, 1]) & (refs <= [1, 3])).all())
        True
    """
    theta = np.asarray(theta_true, dtype=np.float64)
    return rng.uniform(theta.min(axis=0), theta.max(axis=0), size=theta.shape)


def tarp_ranks(
    theta_true: NDArray, posterior_samples: NDArray, references: NDArray, z_score: bool = True
) -> NDArray[np.int64]:
    """Counts, per test simulation, the posterior samples closer to the reference than the truth.

    Arguments:
        theta_true: The true parameters ``[N, d]``.
        posterior_samples: ``S`` posterior samples per simulation ``[N, S, d]``.
        references: One reference point per simulation ``[N, d]``.
        z_score: Rescale every parameter to the unit interval by the range of the
            truths first (as sbi does), so no parameter dominates the distance.

    Returns:
        The ranks ``[N]``, in ``{0, ..., S}`` (Euclidean distance).

    Example:
        >>> tarp_ranks(np.zeros((1, 1)), np.array([[[0.5], [2.0], [-3.0]]]), np.ones((1, 1)), z_score=False)
        array([1])
    """
    theta = np.asarray(theta_true, dtype=np.float64)
    samples = np.asarray(posterior_samples, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if theta.ndim != 2 or samples.shape[::2] != theta.shape or samples.ndim != 3:
        raise ValueError(
            f"posterior_samples: expected shape [N, S, d] with theta_true [N, d] = {list(theta.shape)}, "
            f"got {list(samples.shape)}"
        )
    if references.shape != theta.shape:
        raise ValueError(f"references: expected shape {list(theta.shape)} like theta_true, got {list(references.shape)}")
    if z_score:
        low, high = theta.min(axis=0), theta.max(axis=0)
        scale = high - low + 1e-10
        theta, samples, references = (theta - low) / scale, (samples - low) / scale, (references - low) / scale
    sample_distance = np.linalg.norm(samples - references[:, None, :], axis=-1)
    true_distance = np.linalg.norm(theta - references, axis=-1)
    return np.sum(sample_distance < true_distance[:, None], axis=1, dtype=np.int64)


def tarp_ecp(ranks: NDArray, num_samples: int, alpha: NDArray) -> NDArray[np.float64]:
    """Returns the expected coverage probability at each credibility level ``alpha``.

    ``ECP(alpha)`` is the fraction of simulations with ``rank / S < alpha``, and 1 at ``alpha = 1``.

    Arguments:
        ranks: TARP ranks ``[N]`` (or ``[B, N]`` for ``B`` bootstrap replicates).
        num_samples: ``S``, the samples each rank was taken among.
        alpha: The credibility levels ``[L]``, in ``[0, 1]``.

    Returns:
        The ECP ``[L]`` (or ``[B, L]``).

    Example:
        >>> tarp_ecp(np.array([0, 5, 10]), 10, np.array([0.0, 0.5, 1.0])).tolist()
        [0.0, 0.3333333333333333, 1.0]
    """
    fraction = np.asarray(ranks) / num_samples
    alpha = np.asarray(alpha, dtype=np.float64)
    ecp = np.mean(fraction[..., None, :] < alpha[:, None], axis=-1)
    return np.where(alpha >= 1.0, 1.0, ecp)


def tarp_atc(alpha: NDArray, ecp: NDArray) -> NDArray[np.float64] | float:
    """The area between the ECP curve and the diagonal over the upper half of an even ``alpha`` grid.

    Defined as in sbi's ``check_tarp``: positive for too-wide posteriors,
    negative for too-narrow ones, about 0 when calibrated.

    Arguments:
        alpha: An evenly spaced grid ``[L]``.
        ecp: The ECP on that grid ``[L]`` (or ``[B, L]``).

    Returns:
        The area (a float, or ``[B]``).

    Example:
        >>> alpha = np.linspace(0, 1, 11)
        >>> tarp_atc(alpha, alpha)
        0.0
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    middle = alpha.shape[0] // 2
    area = np.sum((np.asarray(ecp)[..., middle:] - alpha[middle:]) * (alpha[1] - alpha[0]), axis=-1)
    return float(area) if np.ndim(area) == 0 else area


def tarp(
    theta_true: NDArray,
    posterior_samples: NDArray,
    references: NDArray,
    num_bins: int | None = None,
    num_bootstrap: int = 200,
    confidence: float = 0.95,
    z_score: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """TARP over ``N`` test simulations: ECP curve with bootstrap band, ATC, KS test and a verdict.

    The verdict is ``calibrated`` unless the one-sample KS test rejects uniform
    ranks at ``1 - confidence``; then ``overconfident`` if ATC < 0 (too narrow),
    ``conservative`` if ATC > 0 (too wide).

    Arguments:
        theta_true: The true parameters ``[N, d]``.
        posterior_samples: Posterior samples ``[N, S, d]``.
        references: Reference points ``[N, d]``, e.g. from :func:`tarp_uniform_references`.
        num_bins: The ``alpha`` grid has ``num_bins + 1`` points on ``[0, 1]``;
            ``max(2, N // 10)`` by default, as in sbi.
        num_bootstrap: Bootstrap replicates (resampling the test simulations)
            for the ECP band and the ATC standard error.
        confidence: Coverage of the band; the KS test's level is ``1 - confidence``.
        z_score: See :func:`tarp_ranks`.
        seed: Seeds the bootstrap.

    Returns:
        A JSON-serialisable dict: ``alpha``, ``ecp``, ``band_low``, ``band_high``
        (lists), ``atc``, ``atc_stderr``, ``ks_statistic``, ``ks_pvalue``,
        ``confidence``, ``num_simulations``, ``num_samples``, ``verdict``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> theta = rng.normal(size=(300, 2))
        >>> x = theta + rng.normal(size=(300, 2))
        >>> samples = x[:, None] / 2 + rng.normal(size=(300, 400, 2)) / 2**0.5  # the exact posterior
        >>> tarp(theta, samples, tarp_uniform_references(theta, rng))["verdict"]
        'calibrated'
    """
    ranks = tarp_ranks(theta_true, posterior_samples, references, z_score)
    num_simulations, num_samples = len(ranks), np.shape(posterior_samples)[1]
    num_bins = max(2, num_simulations // 10) if num_bins is None else num_bins
    if num_bins < 2:
        raise ValueError(f"num_bins: expected at least 2, got {num_bins}")
    if num_bootstrap < 2:
        raise ValueError(f"num_bootstrap: expected at least 2, got {num_bootstrap}")
    alpha = np.linspace(0.0, 1.0, num_bins + 1)
    ecp = tarp_ecp(ranks, num_samples, alpha)
    atc = tarp_atc(alpha, ecp)

    rng = np.random.default_rng(seed)
    replicates = ranks[rng.integers(0, num_simulations, size=(num_bootstrap, num_simulations))]
    ecp_replicates = tarp_ecp(replicates, num_samples, alpha)
    tail = 100 * (1 - confidence) / 2
    uniformity = sbc_uniformity(ranks[:, None], num_samples)
    ks_pvalue = uniformity["ks_pvalues"][0]
    if ks_pvalue >= 1 - confidence:
        verdict = "calibrated"
    else:
        verdict = "overconfident" if atc < 0 else "conservative"
    return {
        "alpha": alpha.tolist(),
        "ecp": ecp.tolist(),
        "band_low": np.percentile(ecp_replicates, tail, axis=0).tolist(),
        "band_high": np.percentile(ecp_replicates, 100 - tail, axis=0).tolist(),
        "atc": atc,
        "atc_stderr": float(np.std(tarp_atc(alpha, ecp_replicates), ddof=1)),
        "ks_statistic": uniformity["ks_statistics"][0],
        "ks_pvalue": ks_pvalue,
        "confidence": confidence,
        "num_simulations": int(num_simulations),
        "num_samples": int(num_samples),
        "verdict": verdict,
    }
