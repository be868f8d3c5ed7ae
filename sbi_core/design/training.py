"""Amortised estimators for design: trained once on designs drawn over the whole space.

Each simulation gets its own design, uniform in the box; the estimator's observation is
:func:`~sbi_core.design.eig.design_observation` (outcome and design side by side), so one
network scores any design afterwards, with no retraining. The prior does not depend on the
design, so a ratio estimator learns :math:`\\log p(x | \\theta, \\xi) - \\log p(x | \\xi)` and NPE
:math:`q(\\theta | x, \\xi)`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from sbi_core.design.eig import design_observation
from sbi_core.design.tasks import DesignTask

__all__ = ["design_training_set", "train_design_estimator"]


def design_training_set(task: DesignTask, num_simulations: int) -> tuple[Tensor, Tensor]:
    """``theta [N, d]`` from the prior and observations ``[N, T + T p]`` at uniform designs;
    the caller seeds torch."""
    theta = task.prior.sample((num_simulations,))
    designs = task.space.sample(num_simulations)
    return theta, design_observation(task.simulate(theta, designs), designs)


def train_design_estimator(
    method: str, task: DesignTask, num_simulations: int, training: dict[str, Any], device: str = "cpu"
):
    """Simulates a training set and trains `method` on it; returns the estimator and its history."""
    from sbi_core.estimators import train_estimator

    theta, observed = design_training_set(task, num_simulations)
    return train_estimator(method, theta, observed, task.prior, training, device)
