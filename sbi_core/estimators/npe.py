r"""NPE: the flow's posterior over the prior, :math:`\log q(\theta | x) - \log p(\theta)`, is the log-ratio.

Bayes' rule, :math:`p(\theta | x) / p(\theta) = p(x | \theta) / p(x)`, makes a
posterior estimator a ratio estimator once the prior is divided out. Outside
the prior's support the ratio is undefined (the posterior and the prior are
both zero there); it is set to ``-inf``, so that a sampler or an optimiser adding
the log-prior, or not, never prefers such a point. The flow's mass leaking out
of the support is not renormalised: a constant per observation.

The posterior itself is the flow, sampled as sbi's ``DirectPosterior`` samples it
(rejecting draws outside the prior's support), many observations at once.

References:
    | Fast epsilon-free Inference of Simulation Models with Bayesian Conditional
    | Density Estimation (Papamakarios & Murray, 2016) https://arxiv.org/abs/1605.06376
    | Automatic Posterior Transformation for Likelihood-Free Inference
    | (Greenberg et al., 2019) https://arxiv.org/abs/1905.07488
"""

from __future__ import annotations

import math
from typing import Any

import torch
from sbi.inference import DirectPosterior
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.estimators.base import Estimator
from sbi_core.estimators.device import prior_on_device
from sbi_core.estimators.flows import build_flow
from sbi_core.estimators.posterior import PosteriorEstimate, chunked
from sbi_core.sampling.support import prior_log_prob

__all__ = ["NPEEstimator"]


class NPEEstimator(Estimator):
    r"""An NPE flow, :math:`f(\theta, x) = \log q(\theta | x) - \log p(\theta)`, ``-inf`` outside the prior's support.

    Arguments:
        network: sbi's trained conditional density estimator of theta given (flattened) x.
        hyperparameters: As :func:`~sbi_core.estimators.flows.train_flow` returns them.
        prior: The prior it was trained under: the log-ratio divides it out.

    Example:
        >>> from sbi.utils import BoxUniform
        >>> estimator = NPEEstimator.from_hyperparameters({
        ...     "method": "npe", "flow": "zuko_maf", "hidden_features": 8, "num_transforms": 1,
        ...     "num_bins": 8, "dim_theta": 2, "x_shape": [3]}, BoxUniform(-torch.ones(2), torch.ones(2)))
        >>> log_ratio = estimator.log_ratio(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.randn(4, 3))
        >>> log_ratio.shape, log_ratio[1].isneginf().all().item()
        (torch.Size([2, 4]), True)
    """

    @classmethod
    def from_hyperparameters(cls, hyperparameters: dict[str, Any], prior: Distribution | None = None) -> NPEEstimator:
        """Rebuilds the untrained flow (see :func:`~sbi_core.estimators.flows.build_flow`)."""
        return cls(build_flow(hyperparameters), hyperparameters, prior)

    def _all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        # The flow's sample dimension runs over theta, its batch dimension over x.
        log_q = self.network.log_prob(theta[:, None, :].expand(-1, len(x), -1), condition=x.reshape(len(x), -1))
        return _divide(log_q, prior_log_prob(self.require_prior(), theta)[:, None])

    def _per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        return _divide(self._log_q(theta, x), prior_log_prob(self.require_prior(), theta))

    def _log_q(self, theta: Tensor, x: Tensor) -> Tensor:
        """The flow's ``log q(theta_mc | x_m)``: theta ``[M, C, d]``, x ``[M, ...]`` -> ``[M, C]``."""
        x = x.reshape(len(x), -1)
        return self.network.log_prob(theta.transpose(0, 1), condition=x).transpose(0, 1)

    def posterior(self, sampling: dict[str, Any]) -> PosteriorEstimate:
        """The flow as the posterior: sampled with rejection outside the prior's support; its
        log-density is the flow's, ``-inf`` outside the support. Reads no ``sampling`` key."""
        prior = self.require_prior()
        device = self.device
        direct = DirectPosterior(posterior_estimator=self.network, prior=prior_on_device(prior, device))

        def sample(x: Tensor, num_samples: int) -> Tensor:
            x = x.to(device).reshape(len(x), -1)
            samples = direct.sample_batched((num_samples,), x=x, show_progress_bars=len(x) > 1)
            return samples.transpose(0, 1).cpu()

        def log_density(theta: Tensor, x: Tensor) -> Tensor:
            theta, x = self._inputs(theta, x, 3)
            with torch.no_grad():
                log_q = self._log_q(theta, x)
                inside = prior_log_prob(prior, theta).isfinite()
                return torch.where(inside, log_q, -math.inf).cpu()

        return PosteriorEstimate(sample=sample, log_density=chunked(log_density))


def _divide(log_q: Tensor, log_prior: Tensor) -> Tensor:
    """``log_q - log_prior`` inside the prior's support, ``-inf`` outside (gradients stay finite)."""
    inside = log_prior.isfinite()
    return torch.where(inside, log_q - torch.where(inside, log_prior, 0.0), -math.inf)
