"""Gaussian smearing: a 1-d parameter measured with a biased Gaussian resolution.

The simplest unfolding problem: each event has a true value :math:`\\theta` and is
recorded as :math:`x = \\theta + b + \\sigma z`, :math:`z \\sim N(0, 1)`. The
likelihood and the single-event posterior are known exactly, so the task serves as a
closure test for unfolding (fitting the population's source distribution) and for
per-event posteriors alike.

References:
    | Neural Empirical Bayes: Source Distribution Estimation and its Applications to
    | Simulation-Based Inference (Vandegar, Kagan, Wehenkel and Louppe, AISTATS 2021)
    | https://arxiv.org/abs/2011.05836
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_core.tasks.base import Task
from sbi_core.tasks.box import BoxUniform

__all__ = ["gaussian_smearing_task", "gaussian_smearing_log_likelihood"]

PRIOR_LOW = -5.0
PRIOR_HIGH = 5.0
# The detector's bias b and resolution sigma: x = theta + b + sigma z.
BIAS = 0.5
NOISE_STD = 1.0
PARAMETER_NAME = "theta"
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _simulator(theta: Tensor) -> Tensor:
    return theta + BIAS + NOISE_STD * torch.randn_like(theta)


def _check_pairs(theta: Tensor, x: Tensor, name: str) -> None:
    """Checks ``theta [N, 1]`` and ``x [M, 1]`` for an all-pairs log-likelihood."""
    if theta.ndim != 2 or theta.shape[1] != 1:
        raise ValueError(
            f"{name}: theta must have shape [N, 1], got {list(theta.shape)}"
        )
    if x.ndim != 2 or x.shape[1] != 1:
        raise ValueError(f"{name}: x must have shape [M, 1], got {list(x.shape)}")


def gaussian_smearing_log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Returns the exact :math:`\log N(x_j; \theta_i + b, \sigma^2)` for all pairs.

    Arguments:
        theta: Parameters, shape ``[N, 1]``.
        x: Observations, shape ``[M, 1]``.

    Returns:
        The log-likelihoods, shape ``[N, M]`` (row ``i``: ``theta[i]``; column ``j``:
        ``x[j]``), in the inputs' dtype and differentiable in both.

    Raises:
        ValueError: If a shape is not as above.

    Example:
        >>> gaussian_smearing_log_likelihood(torch.zeros(3, 1), torch.zeros(4, 1)).shape
        torch.Size([3, 4])
    """
    _check_pairs(theta, x, "gaussian_smearing_log_likelihood")
    z = (x[:, 0][None, :] - theta[:, 0][:, None] - BIAS) / NOISE_STD
    return -0.5 * z**2 - math.log(NOISE_STD) - _LOG_SQRT_2PI


def _reference_posterior(x_o: Tensor, num_samples: int) -> Tensor:
    # Uniform prior times a Gaussian likelihood: the posterior is N(x_o - b, sigma^2)
    # truncated to the prior box, sampled exactly by inverting its CDF (in float64, and
    # in the tail nearer the mean, so that neither end loses precision).
    if x_o.numel() != 1:
        raise ValueError(
            f"gaussian_smearing: x_o must have 1 value, got shape {list(x_o.shape)}"
        )
    mean = float(x_o.reshape(())) - BIAS
    alpha = (PRIOR_LOW - mean) / NOISE_STD
    beta = (PRIOR_HIGH - mean) / NOISE_STD
    sign = -1.0 if alpha > 0 else 1.0  # reflect the upper tail onto the lower one
    lo, hi = sorted((sign * alpha, sign * beta))
    cdf = torch.special.ndtr(torch.tensor([lo, hi], dtype=torch.float64))
    u = cdf[0] + (cdf[1] - cdf[0]) * torch.rand(num_samples, dtype=torch.float64)
    z = sign * torch.special.ndtri(u)
    theta = (mean + NOISE_STD * z).float().clamp(PRIOR_LOW, PRIOR_HIGH)
    return theta[:, None]


def gaussian_smearing_task() -> Task:
    r"""Returns the Gaussian-smearing task: prior :math:`U(-5, 5)`, :math:`x = \theta + 0.5 + N(0, 1)`.

    The parameter is named ``theta``; the data have shape ``[N, 1]``. Every event is
    recorded (no efficiency). The reference posterior is exact: :math:`N(x_o - b,
    \sigma^2)` truncated to the prior box.

    Returns:
        The task, with an exact reference posterior.

    Example:
        >>> task = gaussian_smearing_task()
        >>> task.simulate(task.prior.sample((5,))).shape
        torch.Size([5, 1])

    References:
        | Neural Empirical Bayes (Vandegar et al., AISTATS 2021)
        | https://arxiv.org/abs/2011.05836
    """
    return Task(
        name="gaussian_smearing",
        prior=BoxUniform(torch.tensor([PRIOR_LOW]), torch.tensor([PRIOR_HIGH])),
        parameter_names=(PARAMETER_NAME,),
        simulator=_simulator,
        reference_posterior=_reference_posterior,
    )
