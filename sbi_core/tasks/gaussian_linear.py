"""Gaussian linear: a 10-d Gaussian mean with a Gaussian prior, exact posterior in closed form.

References:
    | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    | https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Independent, MultivariateNormal, Normal

from sbi_core.tasks.base import Task, default_parameter_names

__all__ = [
    "gaussian_linear_task",
    "gaussian_linear_posterior",
    "gaussian_conjugate_posterior",
]

DIM = 10
PRIOR_VARIANCE = 0.1
NOISE_VARIANCE = 0.1


def _prior() -> Independent:
    """N(0, 0.1 I) as independent normals: a MultivariateNormal's draws (for a seed), and no
    ``torch.broadcast_shapes``, whose first call imports sympy (0.45 s of every job's start-up)."""
    return Independent(Normal(torch.zeros(DIM), torch.full((DIM,), PRIOR_VARIANCE**0.5)), 1)


def _simulator(theta: Tensor) -> Tensor:
    return theta + NOISE_VARIANCE**0.5 * torch.randn_like(theta)


def gaussian_conjugate_posterior(
    prior_mean: Tensor, prior_cov: Tensor, noise_cov: Tensor, x_o: Tensor
) -> MultivariateNormal:
    r"""Returns the posterior of :math:`\theta \sim N(m_0, S_0)`, :math:`x \sim N(\theta, S_x)`.

    The posterior is :math:`N(m, S)` with :math:`S = (S_0^{-1} + S_x^{-1})^{-1}` and
    :math:`m = S (S_0^{-1} m_0 + S_x^{-1} x_o)`, computed in float64.

    Arguments:
        prior_mean: :math:`m_0`, shape ``(d,)``.
        prior_cov: :math:`S_0`, shape ``(d, d)``.
        noise_cov: :math:`S_x`, shape ``(d, d)``.
        x_o: The observation, shape ``(d,)``.

    Returns:
        The float32 posterior.
    """
    prior_precision = torch.linalg.inv(prior_cov.double())
    noise_precision = torch.linalg.inv(noise_cov.double())
    cov = torch.linalg.inv(prior_precision + noise_precision)
    cov = (cov + cov.T) / 2
    mean = cov @ (
        prior_precision @ prior_mean.double() + noise_precision @ x_o.double()
    )
    return MultivariateNormal(mean.float(), cov.float())


def gaussian_linear_posterior(x_o: Tensor) -> MultivariateNormal:
    """Returns the exact Gaussian-linear posterior :math:`N(x_o / 2, 0.05 I)`.

    Arguments:
        x_o: The observation, 10 values (shape ``(10,)`` or ``(1, 10)``).

    Returns:
        The posterior, float32.

    Example:
        >>> gaussian_linear_posterior(torch.ones(10)).mean[:2]
        tensor([0.5000, 0.5000])
    """
    if x_o.numel() != DIM:
        raise ValueError(
            f"gaussian_linear: x_o must have {DIM} values, got shape {list(x_o.shape)}"
        )
    eye = torch.eye(DIM, dtype=torch.float64)
    return gaussian_conjugate_posterior(
        torch.zeros(DIM), PRIOR_VARIANCE * eye, NOISE_VARIANCE * eye, x_o.reshape(DIM)
    )


def _reference_posterior(x_o: Tensor, num_samples: int) -> Tensor:
    return gaussian_linear_posterior(x_o).sample((num_samples,))


def gaussian_linear_task() -> Task:
    r"""Returns the sbibm Gaussian-linear task: prior :math:`N(0, 0.1 I)`, :math:`x \sim N(\theta, 0.1 I)`.

    Returns:
        The task, with an exact reference posterior.

    References:
        | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
        | https://arxiv.org/abs/2101.04653
    """
    return Task(
        name="gaussian_linear",
        prior=_prior(),
        parameter_names=default_parameter_names(DIM),
        simulator=_simulator,
        reference_posterior=_reference_posterior,
    )
