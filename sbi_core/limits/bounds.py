"""The box a prior's support spans, read from its torch constraint.

The profile fits keep every parameter inside the prior's support by clamping to
this box. Priors are built from independent one-dimensional pieces (sbi's
``BoxUniform``, ``MultipleIndependent`` of uniform, normal, gamma and truncated
normal priors), whose constraints are intervals, half-lines or the real line,
possibly wrapped in ``independent`` and ``cat``. A constraint of any other kind
counts as unbounded; the fits still reject points outside the support, through
:func:`~sbi_core.sampling.prior_log_prob`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

__all__ = ["support_bounds"]


def support_bounds(prior: Distribution, dim: int) -> tuple[Tensor, Tensor]:
    """Returns the lower and upper ends of each parameter's support (``-inf``/``inf`` where open).

    Arguments:
        prior: A prior with event shape ``(dim,)``.
        dim: The number of parameters ``d``.

    Returns:
        ``low [d]`` and ``high [d]``, float64 on the CPU.

    Example:
        >>> from sbi.utils import BoxUniform
        >>> support_bounds(BoxUniform(torch.zeros(2), torch.ones(2)), 2)
        (tensor([0., 0.], dtype=torch.float64), tensor([1., 1.], dtype=torch.float64))
    """
    try:
        constraint = prior.support
    except NotImplementedError:
        return _unbounded(dim)
    return _bounds(constraint, dim)


def _bounds(constraint: constraints.Constraint, size: int) -> tuple[Tensor, Tensor]:
    """The box of one constraint covering ``size`` parameters (duck-typed on torch's constraints)."""
    if hasattr(constraint, "base_constraint"):
        return _bounds(constraint.base_constraint, size)
    if hasattr(constraint, "cseq") and hasattr(constraint, "lengths"):
        if sum(constraint.lengths) != size:
            return _unbounded(size)
        parts = [_bounds(c, n) for c, n in zip(constraint.cseq, constraint.lengths)]
        return torch.cat([low for low, _ in parts]), torch.cat([high for _, high in parts])
    low = _expand(getattr(constraint, "lower_bound", -math.inf), size)
    high = _expand(getattr(constraint, "upper_bound", math.inf), size)
    if low is None or high is None:
        return _unbounded(size)
    return low, high


def _expand(bound: float | Tensor, size: int) -> Tensor | None:
    """``bound`` as float64 ``[size]``, or ``None`` if its shape does not fit."""
    bound = torch.as_tensor(bound, dtype=torch.float64).detach().cpu().reshape(-1)
    if bound.numel() == 1:
        return bound.expand(size).clone()
    return bound.clone() if bound.numel() == size else None


def _unbounded(size: int) -> tuple[Tensor, Tensor]:
    return (
        torch.full((size,), -math.inf, dtype=torch.float64),
        torch.full((size,), math.inf, dtype=torch.float64),
    )
