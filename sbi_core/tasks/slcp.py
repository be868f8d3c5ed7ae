"""SLCP: a simple likelihood with a complex posterior (5 parameters, 4 Gaussian draws).

References:
    | Sequential Neural Likelihood (Papamakarios et al., 2019)
    | https://arxiv.org/abs/1805.07226
    | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    | https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbi_core.tasks.base import Task, default_parameter_names
from sbi_core.tasks.box import BoxUniform

__all__ = ["slcp_task"]

PRIOR_BOUND = 3.0
NUM_DRAWS = 4
# sbibm adds this to the covariance diagonal so it stays positive definite.
DIAGONAL_JITTER = 1e-6


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
    The posterior has no closed form (sbibm's reference uses rejection sampling), so
    ``reference_posterior`` is ``None``; give a reference file instead.

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
    )
