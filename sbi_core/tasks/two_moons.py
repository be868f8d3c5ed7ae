"""Two moons: a 2-d task with a bimodal, crescent-shaped posterior, sampled exactly.

References:
    | Automatic Posterior Transformation for Likelihood-Free Inference (Greenberg et al., 2019)
    | https://arxiv.org/abs/1905.07488
    | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    | https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_core.tasks.base import Task, default_parameter_names
from sbi_core.tasks.box import BoxUniform

__all__ = ["two_moons_task"]

PRIOR_BOUND = 1.0
BASE_OFFSET = 0.25
R_LOC = 0.1
R_SCALE = 0.01
# Give up once 10^7 exact draws show an acceptance rate below 10^-5: x_o is (nearly)
# impossible and 10^4 samples would take over 10^9 draws.
MIN_ACCEPTANCE_RATE = 1e-5
MIN_PROPOSALS_BEFORE_GIVING_UP = 10_000_000


def _sample_moon(num_samples: int) -> Tensor:
    """Draws the noise point p = (r cos a + 0.25, r sin a), shape [num_samples, 2]."""
    a = (torch.rand(num_samples) - 0.5) * math.pi
    r = R_LOC + R_SCALE * torch.randn(num_samples)
    return torch.stack((r * torch.cos(a) + BASE_OFFSET, r * torch.sin(a)), dim=1)


def _simulator(theta: Tensor) -> Tensor:
    p = _sample_moon(theta.shape[0])
    z0 = (theta[:, 0] + theta[:, 1]) / math.sqrt(2.0)
    z1 = (-theta[:, 0] + theta[:, 1]) / math.sqrt(2.0)
    return p + torch.stack((-z0.abs(), z1), dim=1)


def _reference_posterior(x_o: Tensor, num_samples: int) -> Tensor:
    # x = p + (-|z0|, z1) with (z0, z1) theta rotated by -pi/4. The map theta -> offset is
    # 2-to-1 with unit Jacobian, so drawing p from the noise, inverting for both sign
    # branches of z0 with equal odds and keeping draws inside the (uniform) prior box
    # samples the posterior exactly. Unlike sbibm, draws with p0 < x0 are rejected too:
    # they have no preimage (|z0| would be negative).
    if x_o.numel() != 2:
        raise ValueError(
            f"two_moons: x_o must have 2 values, got shape {list(x_o.shape)}"
        )
    x_o = x_o.reshape(2).to(torch.float32)
    accepted: list[Tensor] = [torch.empty(0, 2)]
    num_accepted, num_proposed = 0, 0
    while num_accepted < num_samples:
        if (
            num_proposed >= MIN_PROPOSALS_BEFORE_GIVING_UP
            and num_accepted < MIN_ACCEPTANCE_RATE * num_proposed
        ):
            raise ValueError(
                f"two_moons: x_o = {x_o.tolist()} is (nearly) impossible under the "
                f"model; {num_accepted} of {num_proposed} exact draws accepted"
            )
        rate = (num_accepted + 1) / (num_proposed + 1) if num_proposed else 0.1
        batch = int(
            min(max(1.2 * (num_samples - num_accepted) / rate, 1000), 1_000_000)
        )
        p = _sample_moon(batch)
        sign = torch.where(torch.rand(batch) < 0.5, -1.0, 1.0)
        z0 = sign * (p[:, 0] - x_o[0])
        z1 = x_o[1] - p[:, 1]
        theta = torch.stack((z0 - z1, z0 + z1), dim=1) / math.sqrt(2.0)
        keep = (p[:, 0] >= x_o[0]) & (theta.abs() < PRIOR_BOUND).all(dim=1)
        accepted.append(theta[keep])
        num_accepted += int(keep.sum())
        num_proposed += batch
    return torch.cat(accepted)[:num_samples]


def two_moons_task() -> Task:
    r"""Returns the sbibm two-moons task: prior :math:`U(-1, 1)^2`, 2-d data.

    The simulator draws :math:`a \sim U(-\pi/2, \pi/2)`, :math:`r \sim N(0.1, 0.01^2)`,
    :math:`p = (r \cos a + 0.25, r \sin a)` and returns
    :math:`x = p + (-|\theta_1 + \theta_2| / \sqrt 2, (\theta_2 - \theta_1) / \sqrt 2)`.

    Returns:
        The task, with an exact reference posterior.

    References:
        | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
        | https://arxiv.org/abs/2101.04653
    """
    return Task(
        name="two_moons",
        prior=BoxUniform(-PRIOR_BOUND * torch.ones(2), PRIOR_BOUND * torch.ones(2)),
        parameter_names=default_parameter_names(2),
        simulator=_simulator,
        reference_posterior=_reference_posterior,
    )
