r"""The profile of a log-ratio over the nuisance parameters, at a grid of POI values at once.

For one observation :math:`x`, the objective is

.. math:: \ell(\theta) = \log r(\theta, x) + \log p(\theta)

(or :math:`\log r` alone with ``include_prior=False``), always restricted to the
prior's support. For a HistFactory model with the main data as ``x``, the
constraint terms are the prior (see :mod:`sbi_core.tasks.histfactory.priors`), so
:math:`\ell` equals pyhf's full log-likelihood up to a constant; for a ratio
estimator, :math:`\log r` is the log-likelihood up to a constant per ``x``.

At each POI value :math:`\mu_g` the profile :math:`\max_\nu \ell(\mu_g, \nu)` is
found for all ``G`` values together (``theta [G, K, d]`` through
:meth:`~sbi_core.sampling.LogRatioModel.per_observation`): ``K`` starting points
drawn from the prior with the POI set to :math:`\mu_g`, the best kept, then
refined inside the support's box. A model whose log-ratio carries gradients
(a :class:`~sbi_core.ratio.RatioEstimator`) is refined by projected Adam through
autograd; one without (:class:`~sbi_core.tasks.histfactory.HistFactoryLikelihood`
evaluates pyhf with numpy, outside autograd) by batched Nelder-Mead. A NaN POI
value leaves the POI free too: that problem's maximum is the global one.

References:
    | Asymptotic formulae for likelihood-based tests of new physics (Cowan et al., 2011)
    | https://arxiv.org/abs/1007.1727
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.limits.bounds import support_bounds
from sbi_core.limits.optimize import Objective, maximise_adam, maximise_nelder_mead
from sbi_core.sampling.support import LogRatioModel, prior_log_prob

__all__ = ["PROFILE_METHODS", "Profile", "profile_log_ratio", "log_objective"]

PROFILE_METHODS = ("auto", "adam", "nelder-mead")
# Points are kept this far (in prior standard deviations) inside an open end of the support.
_BOUNDARY_MARGIN = 1e-6
# Starting points evaluated per call: [G, K, d] in chunks of this many candidates.
_CHUNK = 2**15


@dataclass(frozen=True)
class Profile:
    """The maximisers and maxima of the objective at each POI value.

    Arguments:
        theta: The maximisers ``[G, d]`` (float64).
        log_value: The maxima ``[G]`` (float64; ``-inf`` where no valid point was found).
        method: How they were refined: ``"adam"`` or ``"nelder-mead"``.
    """

    theta: Tensor
    log_value: Tensor
    method: str


def log_objective(
    model: LogRatioModel, prior: Distribution, x: Tensor, include_prior: bool = True
) -> Objective:
    r"""Returns :math:`\theta \mapsto \log r(\theta, x_p) [+ \log p(\theta)]`, ``-inf`` outside the support.

    Arguments:
        model: The log-ratio model.
        prior: The prior; its support always restricts the objective.
        x: One observation per problem ``[P, *x_shape]``.
        include_prior: Whether to add the prior's log-density.

    Returns:
        ``theta [P, C, d] -> [P, C]`` in float64, differentiable in ``theta`` when the model is.

    Example:
        >>> objective = log_objective(likelihood, prior, x_obs[None])
        >>> objective(prior.sample((4,))[None]).shape
        torch.Size([1, 4])
    """
    device, dtype = _device_and_dtype(model)
    x = x.to(device=device, dtype=dtype)

    def objective(theta: Tensor) -> Tensor:
        log_prior = prior_log_prob(prior, theta).to(torch.float64)
        value = model.per_observation(theta.to(device=device, dtype=dtype), x).to(torch.float64).cpu()
        if include_prior:
            value = value + log_prior
        return torch.where(log_prior.isfinite() & ~value.isnan(), value, -math.inf)

    return objective


def profile_log_ratio(
    model: LogRatioModel,
    prior: Distribution,
    x: Tensor,
    poi_index: int,
    poi_values: Tensor,
    include_prior: bool = True,
    num_starts: int = 256,
    num_steps: int = 300,
    method: str = "auto",
    seed: int = 0,
) -> Profile:
    r"""Maximises the objective over the other parameters at each POI value (NaN: over the POI too).

    Arguments:
        model: The log-ratio model (:class:`~sbi_core.sampling.LogRatioModel`).
        prior: The prior, event shape ``(d,)``.
        x: One observation ``[*x_shape]``, or one per POI value ``[G, *x_shape]``.
        poi_index: The POI's position in ``theta``, in ``0 .. d - 1``.
        poi_values: The POI values ``[G]``, inside the prior's support; NaN frees the POI
            (the global maximum).
        include_prior: Whether the objective includes the prior's log-density.
        num_starts: Starting points ``K`` drawn from the prior (shared by all POI values).
        num_steps: Refinement steps (Adam steps or Nelder-Mead iterations).
        method: ``"auto"`` (Adam if the model's output carries gradients, else
            Nelder-Mead), ``"adam"`` or ``"nelder-mead"``.
        seed: Seeds the starting points (torch's global generator is left alone).

    Returns:
        The :class:`Profile`: maximisers ``[G, d]`` and maxima ``[G]``.

    Raises:
        ValueError: Naming the argument: a POI index out of range, a POI value outside
            the prior's support, an ``x`` of the wrong shape, an unknown method.

    Example:
        >>> profile = profile_log_ratio(likelihood, prior, x_obs, 0, torch.tensor([1.0, 2.0, float("nan")]))
        >>> profile.theta.shape, profile.method
        (torch.Size([3, 3]), 'nelder-mead')

    References:
        | Asymptotic formulae for likelihood-based tests of new physics (Cowan et al., 2011)
        | https://arxiv.org/abs/1007.1727
    """
    dim = int(model.dim_theta)
    check_poi_index(poi_index, dim)
    if method not in PROFILE_METHODS:
        raise ValueError(f"method: expected one of {', '.join(PROFILE_METHODS)}, got {method!r}")
    for name, value in (("num_starts", num_starts), ("num_steps", num_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    poi_values = torch.as_tensor(poi_values, dtype=torch.float64).reshape(-1)
    num_values = len(poi_values)
    x = _per_value(torch.as_tensor(x), tuple(model.x_shape), num_values)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draws = prior.sample((num_starts,)).reshape(num_starts, dim).to(torch.float64).cpu()
    fixed = ~poi_values.isnan()
    check_poi_values(prior, dim, poi_index, poi_values[fixed], "poi_values")

    starts = draws.expand(num_values, num_starts, dim).clone()
    starts[fixed, :, poi_index] = poi_values[fixed, None]
    chunk = max(1, _CHUNK // num_starts)
    with torch.no_grad():
        values = torch.cat(
            [
                log_objective(model, prior, x[i : i + chunk], include_prior)(starts[i : i + chunk])
                for i in range(0, num_values, chunk)
            ]
        )
    best = starts[torch.arange(num_values), values.argmax(1)]

    scale = draws.std(0)
    scale = torch.where(scale.isfinite() & (scale > 0), scale, torch.ones_like(scale))
    low, high = support_bounds(prior, dim)
    low, high = low + _BOUNDARY_MARGIN * scale, high - _BOUNDARY_MARGIN * scale
    best = torch.maximum(torch.minimum(best, high), low)
    best[fixed, poi_index] = poi_values[fixed]
    differentiable = _has_gradients(model, x[:1], best[:1])
    if method == "adam" and not differentiable:
        raise ValueError(
            "method: 'adam' needs a model whose log-ratio carries gradients to theta; this one's "
            "does not (use 'nelder-mead' or 'auto')"
        )
    if method == "auto":
        method = "adam" if differentiable else "nelder-mead"
    maximise = maximise_adam if method == "adam" else maximise_nelder_mead

    theta, log_value = best.clone(), torch.empty(num_values, dtype=torch.float64)
    for rows, free in ((fixed, torch.arange(dim) != poi_index), (~fixed, torch.ones(dim, dtype=torch.bool))):
        if rows.any():
            group = log_objective(model, prior, x[rows], include_prior)
            theta[rows], log_value[rows] = maximise(group, best[rows], free, low, high, scale, num_steps)
    return Profile(theta=theta, log_value=log_value, method=method)


def check_poi_index(poi_index: int, dim: int) -> None:
    """Raises ValueError unless ``poi_index`` is an integer in ``0 .. dim - 1``."""
    if isinstance(poi_index, bool) or not isinstance(poi_index, Integral) or not 0 <= poi_index < dim:
        raise ValueError(
            f"poi_index: expected an integer in 0 .. {dim - 1} (the model has d = {dim}), got {poi_index!r}"
        )


def check_poi_values(prior: Distribution, dim: int, poi_index: int, poi_values: Tensor, name: str) -> None:
    """Raises ValueError naming ``name`` if a POI value is not finite or lies outside the prior's support.

    The other parameters are set to one draw from the prior (torch's global generator is left alone).
    """
    poi_values = torch.as_tensor(poi_values, dtype=torch.float64).reshape(-1)
    if not poi_values.isfinite().all():
        raise ValueError(f"{name}: expected finite POI values, got {poi_values.tolist()}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        points = prior.sample((1,)).reshape(1, dim).expand(len(poi_values), -1).clone()
    points[:, poi_index] = poi_values.to(points.dtype)
    outside = ~prior_log_prob(prior, points).isfinite()
    if outside.any():
        low, high = support_bounds(prior, dim)
        raise ValueError(
            f"{name}: POI values {poi_values[outside].tolist()} lie outside the prior's support "
            f"[{low[poi_index].item():g}, {high[poi_index].item():g}] of parameter {poi_index}"
        )


def _has_gradients(model: LogRatioModel, x: Tensor, theta: Tensor) -> bool:
    """Whether the model's log-ratio (not the prior's density) carries gradients back to ``theta [1, d]``."""
    device, dtype = _device_and_dtype(model)
    probe = theta[:, None, :].to(device=device, dtype=dtype).requires_grad_()
    with torch.enable_grad():
        return bool(model.per_observation(probe, x.to(device=device, dtype=dtype)).requires_grad)


def _device_and_dtype(model: LogRatioModel) -> tuple[torch.device, torch.dtype]:
    """Where and in which float type the model takes ``theta`` and ``x``: its first parameter's."""
    anchor = next(iter(model.parameters()), None)
    if anchor is None:
        return torch.device("cpu"), torch.float32
    return anchor.device, anchor.dtype if anchor.dtype.is_floating_point else torch.float32


def _per_value(x: Tensor, x_shape: tuple[int, ...], num_values: int) -> Tensor:
    """``x`` as ``[G, *x_shape]``: one observation repeated, or one per POI value."""
    if tuple(x.shape) == x_shape:
        return x.expand(num_values, *x_shape)
    if tuple(x.shape) == (num_values, *x_shape):
        return x
    raise ValueError(
        f"x: expected one observation of shape {list(x_shape)} or one per POI value "
        f"[{num_values}, {', '.join(map(str, x_shape))}], got {list(x.shape)}"
    )
