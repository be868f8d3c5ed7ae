r"""The posterior of a ratio estimator: :math:`p(\theta | x) \propto p(\theta)\, e^{f(\theta, x)}`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.sampling.mcmc import sample_mcmc
from sbi_core.sampling.sir import sample_sir
from sbi_core.sampling.support import LogRatioModel, prior_log_prob

__all__ = ["RatioPosterior", "SAMPLING_METHODS"]

SAMPLING_METHODS: tuple[str, ...] = ("sir", "mcmc")


class RatioPosterior:
    r"""A trained ratio estimator and its prior, sampled for many observations at once.

    Arguments:
        network: The trained :class:`~sbi_core.ratio.RatioEstimator`, or any
            :class:`LogRatioModel`, e.g. an NLE flow.
        prior: The prior it was trained under (on the CPU).

    Example:
        >>> from sbi.utils import BoxUniform
        >>> posterior = RatioPosterior(RatioEstimator(2, [2]), BoxUniform(-torch.ones(2), torch.ones(2)))
        >>> posterior.sample(torch.zeros(3, 2), 50, seed=0).shape
        torch.Size([3, 50, 2])

    References:
        | Likelihood-free MCMC with Amortized Approximate Ratio Estimators (Hermans et al., 2020)
        | https://arxiv.org/abs/1903.04057
    """

    def __init__(self, network: LogRatioModel, prior: Distribution):
        if len(prior.event_shape) != 1 or prior.event_shape[0] != network.dim_theta:
            raise ValueError(
                f"prior: expected event shape ({network.dim_theta},) like the network's theta, "
                f"got {tuple(prior.event_shape)}"
            )
        self.network = network.eval()
        self.prior = prior

    def log_prob_unnormalized(self, theta: Tensor, x: Tensor) -> Tensor:
        r"""Returns :math:`\log p(\theta) + f(\theta, x)`, ``-inf`` outside the prior's support.

        Arguments:
            theta: ``C`` parameters for each of ``M`` observations ``[M, C, d]``, or
                ``[C, d]`` for one observation.
            x: The observations ``[M, *x_shape]``; with ``theta [C, d]``, one
                observation ``[*x_shape]`` or ``[1, *x_shape]``.

        Returns:
            The unnormalised log-densities ``[M, C]`` (or ``[C]``).
        """
        device = next(self.network.parameters()).device
        theta, x = theta.to(device), x.to(device)
        if theta.ndim == 2:
            x = x.reshape(1, *self.network.x_shape)
            return self.log_prob_unnormalized(theta[None], x)[0]
        return prior_log_prob(self.prior, theta) + self.network.per_observation(theta, x)

    def sample(self, x: Tensor, num_samples: int, method: str = "sir", seed: int | None = None, **options: Any) -> Tensor:
        """Draws ``num_samples`` posterior samples for each of ``M`` observations.

        Arguments:
            x: The observations ``[M, *x_shape]``.
            num_samples: ``S``, samples per observation.
            method: ``"sir"`` (:func:`~sbi_core.sampling.sample_sir`) or ``"mcmc"``
                (:func:`~sbi_core.sampling.sample_mcmc`).
            seed: Seeds the sampler; drawn from torch's global generator if omitted.
            options: Passed to the sampler, e.g. ``num_proposals`` or ``num_chains``.

        Returns:
            The samples ``[M, S, d]``.
        """
        if method not in SAMPLING_METHODS:
            raise ValueError(f"method: expected one of {', '.join(SAMPLING_METHODS)}, got {method!r}")
        if tuple(x.shape[1:]) != self.network.x_shape:
            raise ValueError(
                f"x: expected shape [M, {', '.join(map(str, self.network.x_shape))}], got {list(x.shape)}"
            )
        if method == "sir":
            samples, _ = sample_sir(self.network, self.prior, x, num_samples, seed=seed, **options)
            return samples
        return sample_mcmc(self.network, self.prior, x, num_samples, seed=seed, **options)
