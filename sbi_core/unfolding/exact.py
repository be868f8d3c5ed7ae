r"""An exact log-likelihood as a :class:`~sbi_core.sampling.LogRatioModel`.

For tractable models (and for checking a learned estimator against the truth)
unfolding, the samplers and the limits take a function
:math:`\log p(x | \theta)` in place of a trained estimator: its log-ratio is the
log-likelihood, up to :math:`\log p(x)`, as for NLE.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["LikelihoodModel"]


class LikelihoodModel(nn.Module):
    r"""Wraps ``log_likelihood(theta [N, d], x [M, ...]) -> [N, M]`` (all pairs, differentiable).

    Arguments:
        log_likelihood: The exact log-likelihood, all pairs.
        dim_theta: ``d``.
        x_shape: The shape of one observation.

    Example:
        >>> model = LikelihoodModel(lambda theta, x: -0.5 * (x.T - theta) ** 2, 1, (1,))
        >>> model.all_pairs(torch.zeros(3, 1), torch.ones(2, 1))
        tensor([[-0.5000, -0.5000],
                [-0.5000, -0.5000],
                [-0.5000, -0.5000]])
    """

    def __init__(self, log_likelihood: Callable[[Tensor, Tensor], Tensor], dim_theta: int, x_shape: tuple[int, ...]):
        super().__init__()
        self.log_likelihood = log_likelihood
        self.dim_theta = int(dim_theta)
        self.x_shape = tuple(x_shape)
        # Where to evaluate: the samplers and the fit read the device of the parameters.
        self.device_anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        """theta ``[N, d]``, x ``[M, ...]`` -> ``[N, M]``."""
        return self.log_likelihood(theta, x)

    def per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        """theta ``[M, C, d]``, x ``[M, ...]`` -> ``[M, C]`` (the diagonal blocks of all pairs)."""
        return torch.stack([self.log_likelihood(t, xi[None])[:, 0] for t, xi in zip(theta, x)])
