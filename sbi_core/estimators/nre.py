r"""The NRE family (``nre`` = NRE-B, ``nre_a``, ``nre_c``, ``bnre``): the classifier logit is the log-ratio.

All four train the same network, :class:`~sbi_core.ratio.RatioEstimator`, whose
logit :math:`f(\theta, x) \approx \log p(x | \theta) - \log p(x)` has all pairs
cheap; they differ in the loss only (:mod:`sbi_core.ratio.losses`).

References:
    | Likelihood-free MCMC with Amortized Approximate Ratio Estimators (Hermans et al., 2020)
    | https://arxiv.org/abs/1903.04057
    | On Contrastive Learning for Likelihood-free Inference (Durkan et al., 2020)
    | https://arxiv.org/abs/2002.03712
    | Contrastive Neural Ratio Estimation (Miller et al., 2022)
    | https://arxiv.org/abs/2210.06170
    | Towards Reliable Simulation-Based Inference with Balanced Neural Ratio Estimation
    | (Delaunoy et al., 2022) https://arxiv.org/abs/2208.13624
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.distributions import Distribution

from sbi_core.estimators.base import Estimator
from sbi_core.estimators.registry import method_spec
from sbi_core.ratio import RatioEstimator

__all__ = ["NREEstimator"]


class NREEstimator(Estimator):
    r"""A ratio classifier of the NRE family: :math:`f(\theta, x)` is its logit.

    Arguments:
        network: The trained :class:`~sbi_core.ratio.RatioEstimator`.
        hyperparameters: ``method``, ``loss`` and the network's
            :attr:`~sbi_core.ratio.RatioEstimator.hyperparameters`.
        prior: The prior (for the posterior).

    Example:
        >>> import torch
        >>> estimator = NREEstimator.from_network(RatioEstimator(2, [3]), "nre_c")
        >>> estimator.log_ratio(torch.randn(5, 2), torch.randn(4, 3)).shape
        torch.Size([5, 4])
    """

    network: RatioEstimator

    @classmethod
    def from_network(
        cls, network: RatioEstimator, method: str = "nre", prior: Distribution | None = None
    ) -> NREEstimator:
        """Wraps a ratio network trained with `method`'s loss."""
        spec = method_spec(method)
        if spec.family != "ratio":
            raise ValueError(f"method: expected a ratio method, got {method!r} ({spec.family})")
        return cls(network, {"method": method, "loss": spec.loss, **network.hyperparameters}, prior)

    @classmethod
    def from_hyperparameters(
        cls, hyperparameters: dict[str, Any], prior: Distribution | None = None, embedding_net: nn.Module | None = None
    ) -> NREEstimator:
        """Rebuilds the untrained network (see :meth:`RatioEstimator.from_hyperparameters`)."""
        return cls(RatioEstimator.from_hyperparameters(hyperparameters, embedding_net), hyperparameters, prior)

    def _all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        return self.network.all_pairs(theta, x)

    def _per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        return self.network.per_observation(theta, x)
