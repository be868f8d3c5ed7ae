r"""NLE: the flow's log-likelihood :math:`\log q(x | \theta)` is the log-ratio up to :math:`\log p(x)`.

:math:`\log p(x)` is a constant per observation, so our batched samplers and
the profile likelihood of the limits use the likelihood as they use a ratio.

References:
    | Sequential Neural Likelihood (Papamakarios et al., 2019) https://arxiv.org/abs/1805.07226
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.distributions import Distribution

from sbi_core.estimators.base import Estimator
from sbi_core.estimators.flows import build_flow

__all__ = ["NLEEstimator"]


class NLEEstimator(Estimator):
    r"""An NLE flow, :math:`f(\theta, x) = \log q(x | \theta)`.

    Arguments:
        network: The trained flow of (flattened) x given theta
            (:class:`~sbi_core.estimators.conditional_flow.ConditionalFlow`).
        hyperparameters: As :func:`~sbi_core.estimators.flows.train_flow` returns them.
        prior: The prior (for the posterior).

    Example:
        >>> import torch
        >>> estimator = NLEEstimator.from_hyperparameters({
        ...     "method": "nle", "flow": "zuko_maf", "hidden_features": 8, "num_transforms": 1,
        ...     "num_bins": 8, "dim_theta": 2, "x_shape": [3]})
        >>> estimator.log_ratio(torch.randn(5, 2), torch.randn(4, 3)).shape
        torch.Size([5, 4])
    """

    @classmethod
    def from_hyperparameters(cls, hyperparameters: dict[str, Any], prior: Distribution | None = None) -> NLEEstimator:
        """Rebuilds the untrained flow (see :func:`~sbi_core.estimators.flows.build_flow`)."""
        return cls(build_flow(hyperparameters), hyperparameters, prior)

    def _all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        # The flow's sample dimension runs over x, its batch dimension over theta.
        x = x.reshape(len(x), 1, -1).expand(-1, len(theta), -1)
        return self.network.log_prob(x, condition=theta).T

    def _per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        num_observations, num_per_observation, dim = theta.shape
        x = x.reshape(num_observations, 1, -1).expand(-1, num_per_observation, -1).reshape(1, -1, x[0].numel())
        log_prob = self.network.log_prob(x, condition=theta.reshape(-1, dim))
        return log_prob.reshape(num_observations, num_per_observation)
