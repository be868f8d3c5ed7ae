"""All calibration checks of one estimator on held-out simulations, from one batched sampling pass.

SBC (per parameter and of the log-density), expected HPD coverage and TARP read
the same ``[N, S, d]`` posterior samples; each step is timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from sbi_core.diagnostics.coverage import coverage_verdict, hpd_credibility
from sbi_core.diagnostics.sbc import sbc_ranks, sbc_uniformity
from sbi_core.diagnostics.tarp import tarp

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["Calibration", "calibrate"]


@dataclass
class Calibration:
    """The numbers (JSON-serialisable ``sbc``, ``coverage``, ``tarp``, ``seconds``) and the per-simulation arrays."""

    sbc: dict[str, Any]
    coverage: dict[str, Any]
    tarp: dict[str, Any]
    parameter_ranks: NDArray[np.int64]
    log_density_ranks: NDArray[np.int64]
    hpd_credibility: NDArray[np.float64]
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Stores the wall time of the block in ``seconds[name]``."""
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start


def calibrate(
    theta: Tensor,
    x: Tensor,
    sample: Callable[[Tensor, int], Tensor],
    log_density: Callable[[Tensor, Tensor], Tensor],
    num_samples: int,
    references: NDArray,
    num_levels: int = 20,
    confidence: float = 0.95,
    tarp_num_bins: int | None = None,
    tarp_num_bootstrap: int = 200,
    seed: int = 0,
) -> Calibration:
    """Runs SBC, expected HPD coverage and TARP for ``N`` test simulations.

    Arguments:
        theta: True parameters ``[N, d]``.
        x: Their simulations ``[N, ...]``.
        sample: ``sample(x [N, ...], S) -> [N, S, d]``, e.g. ``PosteriorEstimate.sample``.
        log_density: ``log_density(theta [N, S, d], x [N, ...]) -> [N, S]`` up to a
            constant per observation, e.g. ``PosteriorEstimate.log_density``.
        num_samples: ``S``, posterior samples per simulation.
        references: TARP reference points ``[N, d]``.
        num_levels: Credibility grid of the coverage verdict (:func:`coverage_verdict`).
        confidence: Confidence of the bands and verdicts.
        tarp_num_bins: See :func:`tarp`.
        tarp_num_bootstrap: See :func:`tarp`.
        seed: Seeds TARP's bootstrap (the caller seeds the sampler).

    Returns:
        The :class:`Calibration`; ``seconds`` has ``sampling``, ``log_density``,
        ``sbc``, ``coverage`` and ``tarp``.
    """
    seconds: dict[str, float] = {}
    with timed(seconds, "sampling"):
        samples = sample(x, num_samples)
    with timed(seconds, "log_density"):
        log_density_samples = log_density(samples, x).numpy()
        log_density_true = log_density(theta[:, None, :], x)[:, 0].numpy()
    theta_np, samples_np = theta.numpy(), samples.numpy()
    with timed(seconds, "sbc"):
        parameter_ranks = sbc_ranks(theta_np, samples_np)
        density_ranks = sbc_ranks(log_density_true[:, None], log_density_samples[..., None])
        sbc = {
            "parameters": sbc_uniformity(parameter_ranks, num_samples),
            "log_density": sbc_uniformity(density_ranks, num_samples),
        }
    with timed(seconds, "coverage"):
        credibility = hpd_credibility(log_density_true, log_density_samples)
        coverage = coverage_verdict(credibility, num_levels, confidence)
    with timed(seconds, "tarp"):
        tarp_result = tarp(
            theta_np, samples_np, references, num_bins=tarp_num_bins, num_bootstrap=tarp_num_bootstrap,
            confidence=confidence, seed=seed,
        )
    return Calibration(
        sbc=sbc,
        coverage=coverage,
        tarp=tarp_result,
        parameter_ranks=parameter_ranks,
        log_density_ranks=density_ranks[:, 0],
        hpd_credibility=credibility,
        seconds=seconds,
    )
