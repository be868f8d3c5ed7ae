"""SLCP: a simple likelihood with a complex posterior (5 parameters, 4 Gaussian draws).

References:
    | Sequential Neural Likelihood (Papamakarios et al., 2019)
    | https://arxiv.org/abs/1805.07226
    | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    | https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_core.tasks.base import Task, default_parameter_names
from sbi_core.tasks.box import BoxUniform

__all__ = ["slcp_task", "slcp_log_likelihood"]

PRIOR_BOUND = 3.0
NUM_DRAWS = 4
# sbibm adds this to the covariance diagonal so it stays positive definite.
DIAGONAL_JITTER = 1e-6
# The reference posterior's importance sampling: pilot and final draws of the scale
# parameters, the defensive share of uniform draws in its proposal, and the effective
# sample size it must reach per posterior sample asked for.
PILOT_DRAWS = 2**17
REFERENCE_DRAWS = 2**20
UNIFORM_SHARE = 0.1
MIN_ESS_PER_SAMPLE = 5.0


def _simulator(theta: Tensor) -> Tensor:
    theta = theta.double()
    s1, s2 = theta[:, 2] ** 2, theta[:, 3] ** 2
    rho = torch.tanh(theta[:, 4])
    # Cholesky factor of [[s1^2 + eps, rho s1 s2], [rho s1 s2, s2^2 + eps]], in closed form.
    l00 = torch.sqrt(s1**2 + DIAGONAL_JITTER)
    l10 = rho * s1 * s2 / l00
    l11 = torch.sqrt(s2**2 + DIAGONAL_JITTER - l10**2)
    eps = torch.randn(theta.shape[0], NUM_DRAWS, 2).double()
    x0 = theta[:, None, 0] + l00[:, None] * eps[..., 0]
    x1 = theta[:, None, 1] + l10[:, None] * eps[..., 0] + l11[:, None] * eps[..., 1]
    return torch.stack((x0, x1), dim=2).reshape(-1, 2 * NUM_DRAWS).float()


def slcp_task() -> Task:
    r"""Returns the sbibm SLCP task: prior :math:`U(-3, 3)^5`, 8-d data.

    The data are 4 independent 2-d Gaussian draws, flattened as
    ``(x_11, x_12, x_21, ..., x_42)``, with mean :math:`(\theta_1, \theta_2)`, standard
    deviations :math:`\theta_3^2, \theta_4^2` and correlation :math:`\tanh \theta_5`.
    The likelihood is known (:func:`slcp_log_likelihood`), and the reference posterior
    samples it to within importance-sampling error (:func:`_reference_posterior`).

    Returns:
        The task.

    References:
        | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
        | https://arxiv.org/abs/2101.04653
    """
    return Task(
        name="slcp",
        prior=BoxUniform(-PRIOR_BOUND * torch.ones(5), PRIOR_BOUND * torch.ones(5)),
        parameter_names=default_parameter_names(5),
        simulator=_simulator,
        reference_posterior=_reference_posterior,
    )


def _covariance(scales: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The draws' covariance ``(var_1, var_2, cov)`` from ``(theta_3, theta_4, theta_5)`` ``[..., 3]``."""
    s1, s2, rho = scales[..., 0] ** 2, scales[..., 1] ** 2, torch.tanh(scales[..., 2])
    return s1**2 + DIAGONAL_JITTER, s2**2 + DIAGONAL_JITTER, rho * s1 * s2


def slcp_log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""The exact :math:`\log p(x | \theta)` of SLCP, broadcast over leading dimensions.

    Arguments:
        theta: ``[..., 5]``.
        x: ``[..., 8]``, broadcastable against theta's leading dimensions.

    Returns:
        ``[...]``, float32 (computed in float64).

    Example:
        >>> slcp_log_likelihood(torch.zeros(3, 1, 5) + 1.0, torch.zeros(1, 4, 8)).shape
        torch.Size([3, 4])
    """
    theta, draws = theta.double(), x.double().reshape(*x.shape[:-1], NUM_DRAWS, 2)
    var1, var2, cov = _covariance(theta[..., 2:])
    det = var1 * var2 - cov**2
    d0 = draws[..., 0] - theta[..., 0, None]
    d1 = draws[..., 1] - theta[..., 1, None]
    quadratic = (var2[..., None] * d0**2 - 2 * cov[..., None] * d0 * d1 + var1[..., None] * d1**2) / det[..., None]
    log_likelihood = -0.5 * quadratic.sum(-1) - 0.5 * NUM_DRAWS * torch.log(det) - NUM_DRAWS * math.log(2 * math.pi)
    return log_likelihood.float()


def _log_marginal_in_means(scales: Tensor, draws: Tensor) -> Tensor:
    r"""``log`` of the likelihood integrated over the means :math:`(\theta_1, \theta_2)` on the plane.

    With :math:`\bar x` the draws' mean and :math:`\Sigma` their covariance,
    :math:`\prod_i N(x_i; \mu, \Sigma) = \prod_i N(x_i; \bar x, \Sigma)
    \exp(-\tfrac{n}{2} (\mu - \bar x)^T \Sigma^{-1} (\mu - \bar x))`, whose integral over
    :math:`\mu` is :math:`\prod_i N(x_i; \bar x, \Sigma) \, 2\pi |\Sigma / n|^{1/2}`.
    """
    var1, var2, cov = _covariance(scales)
    det = var1 * var2 - cov**2
    d = draws - draws.mean(0)
    quadratic = (var2[:, None] * d[:, 0] ** 2 - 2 * cov[:, None] * d[:, 0] * d[:, 1] + var1[:, None] * d[:, 1] ** 2)
    log_likelihood = -0.5 * (quadratic / det[:, None]).sum(-1) - 0.5 * NUM_DRAWS * torch.log(det)
    return log_likelihood + 0.5 * torch.log(det / NUM_DRAWS**2)


def _reference_posterior(x_o: Tensor, num_samples: int) -> Tensor:
    r"""Posterior samples of SLCP for one observation, exact up to importance-sampling error.

    The means enter the likelihood as a Gaussian, so they are integrated out in closed
    form (:func:`_log_marginal_in_means`) and the scales
    :math:`(|\theta_3|, |\theta_4|, \theta_5)` are importance-sampled in 3 dimensions:
    a uniform pilot fixes a Gaussian proposal (twice the pilot's covariance), mixed with
    10% uniform draws so no tail is missed. The signs of :math:`\theta_3, \theta_4`,
    which the simulator cannot see, are drawn with equal odds; the means are drawn from
    their Gaussian given the scales and rejected outside the prior box, which restores the
    box's truncation exactly. Raises ValueError when the effective sample size of the
    scales stays below 5 per sample asked for.
    """
    if x_o.numel() != 2 * NUM_DRAWS:
        raise ValueError(f"slcp: x_o must have {2 * NUM_DRAWS} values, got shape {list(x_o.shape)}")
    draws = x_o.reshape(NUM_DRAWS, 2).double()
    low = torch.tensor([0.0, 0.0, -PRIOR_BOUND], dtype=torch.float64)
    width = torch.tensor([PRIOR_BOUND, PRIOR_BOUND, 2 * PRIOR_BOUND], dtype=torch.float64)
    pilot = low + width * torch.rand(PILOT_DRAWS, 3, dtype=torch.float64)
    weights = torch.softmax(_log_marginal_in_means(pilot, draws), 0)
    mean = weights @ pilot
    centred = pilot - mean
    proposal = torch.distributions.MultivariateNormal(mean, 2 * (centred.T * weights) @ centred)
    accepted: list[Tensor] = []
    while sum(len(a) for a in accepted) < num_samples:
        from_uniform = torch.rand(REFERENCE_DRAWS) < UNIFORM_SHARE
        scales = torch.where(
            from_uniform[:, None], low + width * torch.rand(REFERENCE_DRAWS, 3, dtype=torch.float64),
            proposal.sample((REFERENCE_DRAWS,)),
        )
        inside = ((scales >= low) & (scales <= low + width)).all(1)
        log_q = torch.logaddexp(
            math.log(UNIFORM_SHARE) - width.log().sum(), math.log(1 - UNIFORM_SHARE) + proposal.log_prob(scales)
        )
        log_w = torch.where(inside, _log_marginal_in_means(scales.clamp(low, low + width), draws) - log_q, -math.inf)
        weights = torch.softmax(log_w, 0)
        ess = float(1 / (weights**2).sum())
        if ess < MIN_ESS_PER_SAMPLE * num_samples:
            raise ValueError(
                f"slcp: reference posterior's importance sampling reached an effective sample size of {ess:.0f} "
                f"for {num_samples} samples (at least {MIN_ESS_PER_SAMPLE:g} per sample needed)"
            )
        chosen = scales[torch.multinomial(weights.float(), num_samples, replacement=True)]
        var1, var2, cov = _covariance(chosen)
        scale_tril = torch.linalg.cholesky(
            torch.stack((torch.stack((var1, cov), -1), torch.stack((cov, var2), -1)), -2) / NUM_DRAWS
        )
        means = draws.mean(0) + (scale_tril @ torch.randn(num_samples, 2, 1, dtype=torch.float64))[..., 0]
        signs = torch.where(torch.rand(num_samples, 2) < 0.5, -1.0, 1.0).double()
        theta = torch.cat((means, chosen[:, :2] * signs, chosen[:, 2:]), 1)
        accepted.append(theta[(means.abs() <= PRIOR_BOUND).all(1)])
    return torch.cat(accepted)[:num_samples].float()
