"""The prior's log-density with ``-inf`` outside its support, for any batch shape and device.

torch distributions validate their arguments, so ``log_prob`` raises on a point
outside the support instead of returning ``-inf``; samplers propose such points
all the time. Here the support is checked first and the density evaluated only
inside it.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = ["prior_log_prob"]


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
