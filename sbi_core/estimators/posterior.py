r"""The batched posterior of a trained estimator: sample ``[M, S, d]``, evaluate ``[M, S]``.

:class:`PosteriorEstimate` is what calibration, sampling steps and plots use.
Every estimator makes one (:meth:`~sbi_core.estimators.Estimator.posterior`):
NPE by sampling its flow; NLE and the ratio methods, whose log-ratio
:math:`f(\theta, x)` is known up to a constant per observation, through
:func:`sampler_posterior`, our batched SIR or MCMC of
:math:`p(\theta)\, e^{f(\theta, x)}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.sampling import RatioPosterior
from sbi_core.sampling.support import LogRatioModel

__all__ = ["PosteriorEstimate", "sampler_posterior", "chunked"]

Sampler = Callable[[Tensor, int], Tensor]
LogDensity = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class PosteriorEstimate:
    """What every consumer needs of a trained estimator's posterior, batched over observations.

    Both return CPU tensors, whatever the estimator's device.

    Attributes:
        sample: ``sample(x [M, ...], S) -> [M, S, d]``, posterior samples per
            observation, drawing its seed from torch's global generator.
        log_density: ``log_density(theta [M, S, d], x [M, ...]) -> [M, S]``, the
            posterior log-density up to a constant per observation (the flow's for
            NPE; log-likelihood or log-ratio plus log-prior for the others), ``-inf``
            outside the prior's support, without gradients; for density ranks and
            HPD regions.
    """

    sample: Sampler
    log_density: LogDensity


def sampler_posterior(model: LogRatioModel, prior: Distribution, sampling: dict[str, Any]) -> PosteriorEstimate:
    r"""The posterior :math:`p(\theta)\, e^{f(\theta, x)}` of a log-ratio model, by our batched samplers.

    Arguments:
        model: The log-ratio model, on the device it samples on.
        prior: Its prior (on the CPU).
        sampling: The config's ``sampling`` keys: ``sampler`` (``sir`` or ``mcmc``),
            ``num_proposals`` and ``max_proposals`` (SIR, optional), ``num_chains``, ``warmup_steps``,
            ``thin`` (MCMC; ``3 d`` if absent) and ``jump_every`` (MCMC; 0 for none).

    Returns:
        The posterior; each ``sample`` call draws one seed from torch's global generator.

    Example:
        >>> from sbi_core.ratio import RatioEstimator
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> posterior = sampler_posterior(RatioEstimator(2, [3]), prior, {"sampler": "sir"})
        >>> posterior.sample(torch.zeros(4, 3), 10).shape
        torch.Size([4, 10, 2])
    """
    ratio_posterior = RatioPosterior(model, prior)
    device = next(model.parameters()).device
    if sampling["sampler"] == "mcmc":
        options = {
            "num_chains": sampling["num_chains"],
            "warmup_steps": sampling["warmup_steps"],
            "thin": sampling.get("thin", 3 * model.dim_theta),
            "jump_every": sampling.get("jump_every", 5) or None,
            "show_progress_bar": True,
        }
    else:
        options = {key: sampling[key] for key in ("num_proposals", "max_proposals") if key in sampling}

    def sample(x: Tensor, num_samples: int) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, ()).item())  # from the caller's seeded stream
        samples = ratio_posterior.sample(x.to(device), num_samples, method=sampling["sampler"], seed=seed, **options)
        return samples.cpu()

    def log_density(theta: Tensor, x: Tensor) -> Tensor:
        with torch.no_grad():
            return ratio_posterior.log_prob_unnormalized(theta.to(device), x.to(device)).cpu()

    return PosteriorEstimate(sample=sample, log_density=chunked(log_density))


def chunked(log_density: LogDensity, max_pairs: int = 2**17) -> LogDensity:
    """Evaluates a log-density ``(theta [M, S, d], x [M, ...]) -> [M, S]`` in chunks of
    observations, bounding memory at about ``max_pairs`` (theta, x) pairs per call.

    Example:
        >>> evaluate = chunked(lambda theta, x: theta.sum(-1) + x.sum(-1, keepdim=True), max_pairs=6)
        >>> evaluate(torch.ones(5, 3, 2), torch.ones(5, 4)).shape
        torch.Size([5, 3])
    """

    def evaluate(theta: Tensor, x: Tensor) -> Tensor:
        chunk = max(1, max_pairs // max(1, theta.shape[1]))
        return torch.cat([log_density(t, v) for t, v in zip(theta.split(chunk), x.split(chunk), strict=True)])

    return evaluate
