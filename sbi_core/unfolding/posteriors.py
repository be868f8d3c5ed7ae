r"""Per-observation empirical-Bayes posteriors: :math:`p(\theta | x_i) \propto r(\theta, x_i)\, q_\phi(\theta)`.

Once the source is fitted, it replaces the simulation prior: each observation's
posterior is the estimator's ratio times the source, sampled for many observations
at once by our batched samplers (SIR from source proposals, or MCMC), exactly as
posteriors under the training prior are.

References:
    | Neural Empirical Bayes: Source Distribution Estimation and its Applications to
    | Simulation-Based Inference (Vandegar et al., 2021) https://arxiv.org/abs/2011.05836
"""

from __future__ import annotations

import copy
from typing import Any

from torch import Tensor

from sbi_core.sampling.posterior import RatioPosterior
from sbi_core.sampling.support import LogRatioModel
from sbi_core.unfolding.source import SourceFlow

__all__ = ["empirical_bayes_posterior"]


def empirical_bayes_posterior(
    model: LogRatioModel, source: SourceFlow, x: Tensor, num_samples: int, method: str = "sir",
    seed: int = 0, **options: Any,
) -> Tensor:
    """Samples the empirical-Bayes posterior of each observation.

    Arguments:
        model: The estimator the source was fitted with.
        source: The fitted source.
        x: Observations ``[M, *x_shape]``.
        num_samples: Samples per observation.
        method: ``sir`` or ``mcmc`` (:class:`~sbi_core.sampling.RatioPosterior`).
        seed: Seeds the sampler.
        options: Passed to the sampler (``num_proposals``, ``num_chains``...).

    Returns:
        ``[M, num_samples, d]``.
    """
    on_cpu = copy.deepcopy(source).cpu()  # the samplers take their prior on the CPU
    return RatioPosterior(model, on_cpu()).sample(x, num_samples, method=method, seed=seed, **options)
