r"""NPE: the flow's posterior over the prior, :math:`\log q(\theta | x) - \log p(\theta)`, is the log-ratio.

Bayes' rule, :math:`p(\theta | x) / p(\theta) = p(x | \theta) / p(x)`, makes a
posterior estimator a ratio estimator once the prior is divided out. Outside
the prior's support the ratio is undefined (the posterior and the prior are
both zero there); it is set to ``-inf``, so that a sampler or an optimiser adding
the log-prior, or not, never prefers such a point. The flow's mass leaking out
of the support is not renormalised: a constant per observation.

The posterior itself is the flow, sampled as sbi's ``DirectPosterior`` samples it
(rejecting draws outside the prior's support; the same draws for a seed), many observations at once; sampling
stops with a :class:`~sbi_core.errors.SamplingError` when an observation is not finite
or its draws almost never land inside the support, rather than spin.

References:
    | Fast epsilon-free Inference of Simulation Models with Bayesian Conditional
    | Density Estimation (Papamakarios & Murray, 2016) https://arxiv.org/abs/1605.06376
    | Automatic Posterior Transformation for Likelihood-Free Inference
    | (Greenberg et al., 2019) https://arxiv.org/abs/1905.07488
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.errors import SamplingError
from sbi_core.estimators.base import Estimator
from sbi_core.estimators.device import prior_on_device
from sbi_core.estimators.flows import build_flow
from sbi_core.estimators.posterior import PosteriorEstimate, chunked
from sbi_core.sampling.rejection import rejection_sample, within_support
from sbi_core.sampling.support import prior_log_prob

__all__ = ["NPEEstimator"]

# Rejection gives up when, after this many draws per observation, an observation has had
# fewer than MIN_ACCEPTANCE of them inside the prior's support.
MIN_DRAWS = 100_000
MIN_ACCEPTANCE = 1e-4


class NPEEstimator(Estimator):
    r"""An NPE flow, :math:`f(\theta, x) = \log q(\theta | x) - \log p(\theta)`, ``-inf`` outside the prior's support.

    Arguments:
        network: The trained flow of theta given (flattened) x
            (:class:`~sbi_core.estimators.conditional_flow.ConditionalFlow`).
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
        log-density is the flow's, ``-inf`` outside the support. Reads no ``sampling`` key.

        ``sample`` raises :class:`~sbi_core.errors.SamplingError` for a NaN/inf x, and when an
        observation's acceptance stays below ``MIN_ACCEPTANCE`` after ``MIN_DRAWS`` draws."""
        prior = self.require_prior()
        device = self.device
        support = prior_on_device(prior, device)

        def sample(x: Tensor, num_samples: int) -> Tensor:
            x = x.to(device).reshape(len(x), -1)
            bad = ~x.isfinite().all(dim=1)
            if bad.any():
                raise SamplingError(
                    f"NPE: {int(bad.sum())} of {len(x)} observations (first: index {int(bad.nonzero()[0])}) "
                    "hold NaN or inf; the flow has no posterior for them"
                )
            samples = rejection_sample(
                propose=lambda n: self.network.sample((n,), condition=x),
                accept=_giving_up(lambda theta: within_support(support, theta), len(x)),
                num_samples=num_samples,
                # as sbi's DirectPosterior.sample_batched: 10 000 draws per batch, 100 000 in all
                max_batch_size=max(1, min(10_000, 100_000 // len(x))),
                show_progress=len(x) > 1,
            )
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


def _giving_up(accept: Callable[[Tensor], Tensor], num_observations: int) -> Callable[[Tensor], Tensor]:
    """Wraps rejection's accept function ``theta [B, M, d] -> [B, M]`` to count draws and acceptances
    per observation, and to stop a rejection loop that cannot finish."""
    drawn, accepted = 0, torch.zeros(num_observations)

    def counting(theta: Tensor) -> Tensor:
        nonlocal drawn, accepted
        inside = accept(theta)
        drawn += len(theta)
        accepted = accepted + inside.reshape(len(theta), num_observations).sum(0).cpu()
        rate = accepted / drawn
        if drawn >= MIN_DRAWS and rate.min() < MIN_ACCEPTANCE:
            worst = int(rate.argmin())
            raise SamplingError(
                f"NPE: only {int(accepted[worst])} of {drawn} posterior draws for observation {worst} lie "
                f"inside the prior's support (below {MIN_ACCEPTANCE:.2%}); rejection sampling cannot finish. "
                "The observation is likely far from every training simulation (check x_o and its units), "
                "or the flow is badly trained"
            )
        return inside

    return counting
