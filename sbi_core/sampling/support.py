"""What the samplers need: the prior's log-density with ``-inf`` outside its support, the
interface of the network whose log-ratio they add to it, and how many pairs one network call
should take on a device.

torch distributions validate their arguments, so ``log_prob`` raises on a point
outside the support instead of returning ``-inf``; samplers propose such points
all the time. Here the support is checked first and the density evaluated only
inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = ["LogRatioModel", "pairs_per_call", "prior_log_prob"]

# (theta, x) pairs per network call where a sampler evaluates many. On a CPU, calls whose
# activations stay in the cache run 1.3-3.5x faster than 2^18-pair ones (ratio network with 50 or
# 128 hidden units, NLE's and NPE's flows; benchmarks/RESULTS.md); a GPU needs large calls to be busy.
CPU_PAIRS_PER_CALL = 2**14
GPU_PAIRS_PER_CALL = 2**18


class LogRatioModel(Protocol):
    r"""A log-ratio :math:`f(\theta, x)` up to a constant per observation, evaluated in batches.

    Every trained estimator is one (:class:`~sbi_core.estimators.Estimator`: NPE, NLE
    with :math:`f = \log q(x | \theta) = \log r(\theta, x) + \log p(x)`, the ratio
    methods), as are a bare :class:`~sbi_core.ratio.RatioEstimator` and the exact
    :class:`~sbi_core.tasks.histfactory.HistFactoryLikelihood`.
    """

    dim_theta: int
    x_shape: tuple[int, ...]

    def all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        """theta ``[N, d]``, x ``[M, ...]`` -> ``[N, M]``."""

    def per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        """theta ``[M, C, d]``, x ``[M, ...]`` -> ``[M, C]``."""

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The network's parameters (their device is used)."""


def pairs_per_call(device: torch.device | str) -> int:
    """The number of (theta, x) pairs one network call should take on ``device``.

    Example:
        >>> pairs_per_call("cpu") < pairs_per_call("cuda")
        True
    """
    return CPU_PAIRS_PER_CALL if torch.device(device).type == "cpu" else GPU_PAIRS_PER_CALL


def prior_log_prob(prior: Distribution, theta: Tensor) -> Tensor:
    """Returns ``log p(theta)``, ``-inf`` outside the prior's support.

    Priors are built on the CPU (as the tasks build them); ``theta`` on another
    device is evaluated there and the result moved back.

    Arguments:
        prior: A prior with event shape ``(d,)``.
        theta: Parameters ``[..., d]``.

    Returns:
        The log-densities ``[...]``, on ``theta``'s device.

    Example:
        >>> from sbi.utils import BoxUniform
        >>> prior = BoxUniform(torch.zeros(1), torch.ones(1))
        >>> prior_log_prob(prior, torch.tensor([[0.5], [2.0]]))
        tensor([0., -inf])
    """
    device = theta.device
    flat = theta.reshape(-1, theta.shape[-1]).cpu()
    try:
        inside = prior.support.check(flat.detach())
    except NotImplementedError:
        inside = torch.ones(len(flat), dtype=torch.bool)
    inside = inside & torch.isfinite(flat.detach()).all(-1)
    log_prob = torch.full((len(flat),), -torch.inf, dtype=flat.dtype)
    if inside.any():
        log_prob[inside] = prior.log_prob(flat[inside]).to(flat.dtype)
    return log_prob.reshape(theta.shape[:-1]).to(device)
