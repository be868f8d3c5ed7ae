r"""Asymptotic CLs upper limits on a POI from any log-ratio model, as pyhf's ``AsymptoticCalculator`` does.

With the profile :math:`\ell_p(\mu)` and the global maximum :math:`\ell(\hat\mu)`
of the objective (:mod:`sbi_core.limits.profile`), the test statistic is pyhf's
``qtilde``:

.. math:: \tilde q_\mu = 0 \text{ if } \hat\mu > \mu, \text{ else } \max(0, 2 [\ell(\hat\mu) - \ell_p(\mu)]),

with :math:`\hat\mu` restricted to the prior's support: :math:`\tilde q_\mu` when
that support starts at 0, as pyhf's bounds do. :math:`q_{\mu,A}` is the same on the
background-only Asimov data, the model's expected data at :math:`\mu = 0` and the
other parameters at their conditional fit to the observed data. In the
:math:`\hat\mu / \sigma` space of pyhf (``calc_base_dist="normal"``), with
:math:`s = \sqrt{q_{\mu,A}}` the observed statistic is
:math:`t = \sqrt{q_\mu} - s` if :math:`\sqrt{q_\mu} \le s`, else
:math:`(q_\mu - q_{\mu,A}) / 2s`, and

.. math:: \mathrm{CL}_{s+b} = \Phi(-(t + s)), \quad \mathrm{CL}_b = \Phi(-t), \quad
          \mathrm{CL}_s = \mathrm{CL}_{s+b} / \mathrm{CL}_b;

the expected band puts :math:`t = n` for :math:`n = 2, 1, 0, -1, -2`. Where
:math:`q_{\mu,A} = 0` (no sensitivity) :math:`\mathrm{CL}_s = 1`, where pyhf would
divide by zero. The upper limit is where :math:`\mathrm{CL}_s` crosses ``level``,
linearly interpolated on the scan exactly as pyhf's ``linear_grid_scan``.

References:
    | Asymptotic formulae for likelihood-based tests of new physics (Cowan et al., 2011)
    | https://arxiv.org/abs/1007.1727
    | The CLs technique (Read, 2002) https://doi.org/10.1088/0954-3899/28/10/313
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.estimators.registry import LIKELIHOOD_METHODS
from sbi_core.limits.profile import check_poi_index, check_poi_values, profile_log_ratio
from sbi_core.sampling.support import LogRatioModel

__all__ = [
    "EXPECTED_SIGMAS",
    "qmu_tilde",
    "cls_from_test_statistics",
    "interpolate_upper_limit",
    "cls_upper_limit",
]

# The expected band's test statistics in the mu-hat/sigma space, in pyhf's order: the
# limits come out as -2, -1, 0, +1, +2 sigma.
EXPECTED_SIGMAS = (2.0, 1.0, 0.0, -1.0, -2.0)


def qmu_tilde(poi_values: Tensor, log_profile: Tensor, log_maximum: float, mu_hat: float) -> Tensor:
    r"""Returns pyhf's ``qtilde`` test statistic at each POI value from the profile and the global maximum.

    Arguments:
        poi_values: The POI values :math:`\mu` ``[G]``.
        log_profile: The profiled objective at them ``[G]``.
        log_maximum: The global maximum :math:`\ell(\hat\mu)`.
        mu_hat: The POI at the global maximum.

    Returns:
        :math:`\tilde q_\mu` ``[G]`` (float64): 0 where :math:`\hat\mu > \mu`.

    Example:
        >>> qmu_tilde(torch.tensor([0.5, 1.0]), torch.tensor([-1.0, -3.0]), -1.0, 0.7)
        tensor([0., 4.], dtype=torch.float64)
    """
    poi_values = torch.as_tensor(poi_values, dtype=torch.float64)
    twice_difference = 2 * (log_maximum - torch.as_tensor(log_profile, dtype=torch.float64))
    return torch.where(poi_values < mu_hat, 0.0, twice_difference.clamp_min(0.0))


def cls_from_test_statistics(q_mu: Tensor, q_mu_asimov: Tensor) -> tuple[Tensor, Tensor]:
    r"""Returns the observed and expected :math:`\mathrm{CL}_s` from the test statistics (pyhf's formulae).

    Arguments:
        q_mu: The test statistic on the observed data ``[G]`` (>= 0).
        q_mu_asimov: The test statistic on the background-only Asimov data ``[G]`` (>= 0).

    Returns:
        The observed :math:`\mathrm{CL}_s` ``[G]`` and the expected ``[G, 5]`` for
        :data:`EXPECTED_SIGMAS` (increasing: the columns give the -2..+2 sigma limits), float64.

    Example:
        >>> observed, expected = cls_from_test_statistics(torch.tensor([2.0]), torch.tensor([3.0]))
        >>> observed
        tensor([0.1259], dtype=torch.float64)
    """
    sqrt_q = torch.as_tensor(q_mu, dtype=torch.float64).reshape(-1).clamp_min(0.0).sqrt()
    sqrt_q_asimov = torch.as_tensor(q_mu_asimov, dtype=torch.float64).reshape(-1).clamp_min(0.0).sqrt()
    if sqrt_q.shape != sqrt_q_asimov.shape:
        raise ValueError(
            f"q_mu_asimov: expected one value per q_mu ({len(sqrt_q)}), got {len(sqrt_q_asimov)}"
        )
    sensitive = sqrt_q_asimov > 0
    # pyhf uses '<=' here (its issue #1992); the other branch divides by sqrt(q_A).
    statistic = torch.where(
        sqrt_q <= sqrt_q_asimov,
        sqrt_q - sqrt_q_asimov,
        (sqrt_q**2 - sqrt_q_asimov**2) / (2 * torch.where(sensitive, sqrt_q_asimov, 1.0)),
    )
    observed = _cls(statistic, sqrt_q_asimov)
    sigmas = torch.tensor(EXPECTED_SIGMAS, dtype=torch.float64)
    expected = _cls(sigmas.expand(len(sqrt_q_asimov), -1), sqrt_q_asimov[:, None])
    return torch.where(sensitive, observed, 1.0), torch.where(sensitive[:, None], expected, 1.0)


def interpolate_upper_limit(scan: Tensor, cls: Tensor, level: float) -> float:
    r"""Returns the POI value where :math:`\mathrm{CL}_s` crosses ``level``, as pyhf's ``linear_grid_scan``.

    Linear interpolation of the scan against the reversed :math:`\mathrm{CL}_s` values
    (``np.interp``, which assumes them increasing, i.e. :math:`\mathrm{CL}_s` decreasing
    along the scan); a curve that never crosses ``level`` gives the scan's end.

    Arguments:
        scan: The POI values ``[G]``, increasing.
        cls: :math:`\mathrm{CL}_s` at them ``[G]``.
        level: The threshold, e.g. 0.05.

    Returns:
        The upper limit.

    Example:
        >>> round(interpolate_upper_limit(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 0.1, 0.0]), 0.05), 6)
        1.5
    """
    scan = np.asarray(torch.as_tensor(scan, dtype=torch.float64))
    cls = np.asarray(torch.as_tensor(cls, dtype=torch.float64))
    return float(np.interp(level, cls[::-1].tolist(), scan[::-1].tolist()))


def cls_upper_limit(
    model: LogRatioModel,
    prior: Distribution,
    x_obs: Tensor,
    asimov_data: Callable[[Tensor], Tensor],
    poi_index: int,
    scan: Sequence[float] | Tensor,
    level: float = 0.05,
    include_prior: bool = True,
    asimov_prior: Callable[[Tensor], Distribution] | None = None,
    num_starts: int = 256,
    num_steps: int = 300,
    method: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    r"""Computes the observed and expected asymptotic CLs upper limits on the POI from a log-ratio model.

    Two batched profile fits (:func:`~sbi_core.limits.profile.profile_log_ratio`):
    on ``x_obs`` at every scan value, at :math:`\mu = 0` and with the POI free; then
    on the Asimov data ``asimov_data(theta_0)``, with ``theta_0`` the conditional fit
    at :math:`\mu = 0`, at every scan value and with the POI free (under
    ``asimov_prior(theta_0)`` if given). A grid point
    better than the free fit (which can happen within the fits' accuracy) counts as
    the global maximum.

    Arguments:
        model: A log-likelihood up to a constant per x: a trained
            :class:`~sbi_core.estimators.Estimator` whose ``is_likelihood`` is true (NLE and
            the ratio methods, :data:`~sbi_core.estimators.registry.LIKELIHOOD_METHODS`),
            a :class:`~sbi_core.ratio.RatioEstimator`, or the exact
            :class:`~sbi_core.tasks.histfactory.HistFactoryLikelihood`.
        prior: The prior, event shape ``(d,)``; its support bounds every fit.
        x_obs: The observed data ``[*x_shape]``.
        asimov_data: ``theta [d] -> x [*x_shape]``, the model's expected data at ``theta``
            (for HistFactory, :meth:`~sbi_core.tasks.histfactory.HistFactoryModel.expected_data`).
        poi_index: The POI's position in ``theta``.
        scan: The POI values to test, increasing, inside the prior's support.
        level: The CLs level of the limit, in ``(0, 1)``; 0.05 for 95% CL.
        include_prior: Whether the fits maximise ``log r + log prior`` (``True``; with
            HistFactory main data, the constraint terms are the prior) or ``log r``.
        asimov_prior: ``theta_0 [d] ->`` the prior of the fits to the Asimov data, given the
            background-only fit; by default ``prior``. With HistFactory main data and the
            constraints in the prior, :func:`~sbi_core.limits.histfactory_asimov_prior`
            re-centres the constraints as pyhf's Asimov auxiliary data do; without it the
            expected limits differ from pyhf's (see :mod:`sbi_core.limits.histfactory`).
        num_starts: Starting points per fit drawn from the prior.
        num_steps: Refinement steps per fit.
        method: ``"auto"``, ``"adam"`` or ``"nelder-mead"`` (see
            :func:`~sbi_core.limits.profile.profile_log_ratio`).
        seed: Seeds the starting points.

    Returns:
        A JSON-serialisable dict: ``observed_limit``; ``expected_limits`` (-2, -1, 0, +1,
        +2 sigma); ``level``; ``scan``; ``cls_observed`` ``[G]``; ``cls_expected``
        ``[G][5]``; ``q_mu`` and ``q_mu_asimov`` ``[G]``; ``mu_hat``; ``theta_hat`` (the
        global fit); ``theta_background`` (the conditional fit at :math:`\mu = 0`);
        ``asimov_data``; ``limits_in_scan`` (whether every CLs curve crosses ``level``
        inside the scan; if not, its limit is the scan's end, as in pyhf); ``method``;
        ``seconds``.

    Raises:
        ValueError: Naming the argument: a model whose log-ratio is not a likelihood (NPE's),
            a POI index out of range, a scan value outside the prior's support or a scan not
            increasing, a level outside (0, 1), an observation or Asimov data of the wrong shape.

    Example:
        >>> from sbi_core.limits import histfactory_asimov_prior
        >>> from sbi_core.tasks.histfactory import HistFactoryLikelihood, build_histfactory
        >>> model, prior = build_histfactory({"workspace": "config/workspaces/simple.json"}, "w")
        >>> result = cls_upper_limit(HistFactoryLikelihood(model), prior, model.observed_data(),
        ...                          model.expected_data, 0, torch.linspace(0, 5, 21),
        ...                          asimov_prior=histfactory_asimov_prior(model))
        >>> round(result["observed_limit"], 3)  # pyhf.infer: 1.0176
        1.018

    References:
        | Asymptotic formulae for likelihood-based tests of new physics (Cowan et al., 2011)
        | https://arxiv.org/abs/1007.1727
    """
    started = time.perf_counter()
    if not getattr(model, "is_likelihood", True):
        raise ValueError(
            f"model: the {getattr(model, 'method', type(model).__name__)} estimator's log-ratio is not a "
            f"likelihood; CLs limits take one of {', '.join(LIKELIHOOD_METHODS)} or an exact likelihood"
        )
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level: expected a CLs level in (0, 1), e.g. 0.05, got {level!r}")
    dim = int(model.dim_theta)
    check_poi_index(poi_index, dim)
    scan = torch.as_tensor(scan, dtype=torch.float64).reshape(-1)
    if len(scan) < 2 or not bool((scan.diff() > 0).all()):
        raise ValueError(f"scan: expected at least 2 increasing POI values, got {scan.tolist()}")
    check_poi_values(prior, dim, poi_index, scan, "scan")
    check_poi_values(prior, dim, poi_index, torch.zeros(1), "prior (the background-only hypothesis, POI = 0)")
    x_obs = torch.as_tensor(x_obs)
    if x_obs.numel() != math.prod(model.x_shape):
        raise ValueError(f"x_obs: expected one observation of shape {list(model.x_shape)}, got {list(x_obs.shape)}")
    x_obs = x_obs.reshape(model.x_shape)
    num_scan = len(scan)
    free = torch.tensor([math.nan], dtype=torch.float64)
    options = dict(
        include_prior=include_prior, num_starts=num_starts, num_steps=num_steps, method=method, seed=seed
    )

    values = torch.cat([scan, torch.zeros(1, dtype=torch.float64), free])
    observed = profile_log_ratio(model, prior, x_obs, poi_index, values, **options)
    theta_background = observed.theta[num_scan]
    x_asimov = torch.as_tensor(asimov_data(theta_background.to(torch.float32))).detach()
    if x_asimov.numel() != math.prod(model.x_shape):
        raise ValueError(
            f"asimov_data: expected to return x of shape {list(model.x_shape)}, "
            f"got shape {list(x_asimov.shape)}"
        )
    x_asimov = x_asimov.reshape(model.x_shape)
    prior_asimov = prior if asimov_prior is None else asimov_prior(theta_background)
    asimov = profile_log_ratio(model, prior_asimov, x_asimov, poi_index, torch.cat([scan, free]), **options)

    q_mu, theta_hat, mu_hat = _test_statistic(scan, observed.theta, observed.log_value, poi_index)
    q_mu_asimov, _, _ = _test_statistic(scan, asimov.theta, asimov.log_value, poi_index)
    cls_observed, cls_expected = cls_from_test_statistics(q_mu, q_mu_asimov)
    curves = [cls_observed] + list(cls_expected.T)
    limits = [interpolate_upper_limit(scan, curve, level) for curve in curves]
    crossed = all(bool((curve >= level).any() and (curve < level).any()) for curve in curves)
    return {
        "observed_limit": limits[0],
        "expected_limits": limits[1:],
        "level": float(level),
        "scan": scan.tolist(),
        "cls_observed": cls_observed.tolist(),
        "cls_expected": cls_expected.tolist(),
        "q_mu": q_mu.tolist(),
        "q_mu_asimov": q_mu_asimov.tolist(),
        "mu_hat": mu_hat,
        "theta_hat": theta_hat.tolist(),
        "theta_background": theta_background.tolist(),
        "asimov_data": x_asimov.to(torch.float64).reshape(-1).tolist(),
        "limits_in_scan": crossed,
        "method": observed.method,
        "seconds": time.perf_counter() - started,
    }


def _test_statistic(
    scan: Tensor, theta: Tensor, log_value: Tensor, poi_index: int
) -> tuple[Tensor, Tensor, float]:
    """``qtilde`` on the scan, from fits whose rows are the scan, other POI values, and the free fit last.

    Returns the test statistic ``[G]``, the global maximiser and its POI.
    """
    best = int(log_value.argmax())
    if log_value[best] <= log_value[-1]:
        best = len(log_value) - 1
    theta_hat = theta[best]
    mu_hat = float(theta_hat[poi_index])
    q_mu = qmu_tilde(scan, log_value[: len(scan)], float(log_value[best]), mu_hat)
    return q_mu, theta_hat, mu_hat


def _cls(statistic: Tensor, sqrt_q_asimov: Tensor) -> Tensor:
    """``CLs+b / CLb`` for test statistics in pyhf's mu-hat/sigma space."""
    cls_sb = torch.special.ndtr(-(statistic + sqrt_q_asimov))
    cls_b = torch.special.ndtr(-statistic)
    return cls_sb / cls_b
