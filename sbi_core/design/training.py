"""Amortised estimators for design: trained once on designs drawn over the whole space.

Each simulation gets its own design, uniform in the box; the estimator's observation is
:func:`~sbi_core.design.eig.design_observation` (outcome and design side by side), so one
network scores any design afterwards, with no retraining. The prior does not depend on the
design, so a ratio estimator learns :math:`\\log p(x | \\theta, \\xi) - \\log p(x | \\xi)` and NPE
:math:`q(\\theta | x, \\xi)`. NLE is the exception (Klein et al. 2026): its flow is the likelihood
:math:`q(x | \\theta, \\xi)`, so the design joins the parameters it is conditioned on, not the
observation it models (``design_input: theta`` in its hyperparameters).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sbi_core.design.eig import design_observation
from sbi_core.design.tasks import DesignTask

__all__ = ["design_training_set", "train_design_estimator", "train_marginal_likelihood"]


def design_training_set(task: DesignTask, num_simulations: int) -> tuple[Tensor, Tensor]:
    """``theta [N, d]`` from the prior and observations ``[N, T + T p]`` at uniform designs;
    the caller seeds torch."""
    theta = task.prior.sample((num_simulations,))
    designs = task.space.sample(num_simulations)
    return theta, design_observation(task.simulate(theta, designs), designs)


def train_design_estimator(
    method: str, task: DesignTask, num_simulations: int, training: dict[str, Any], device: str = "cpu"
):
    """Simulates a training set and trains `method` on it; returns the estimator and its history.

    NLE learns :math:`q(x | \\theta, \\xi)`: it is trained on ``[theta, design]`` against the outcomes
    alone, under the prior times the uniform design box."""
    from sbi_core.estimators import train_estimator

    theta, observed = design_training_set(task, num_simulations)
    if method != "nle":
        estimator, history = train_estimator(method, theta, observed, task.prior, training, device)
        estimator.hyperparameters["design_input"] = "x"
        return estimator, history
    steps = task.space.num_experiments
    outcomes, designs = observed[:, :steps], observed[:, steps:]
    estimator, history = train_estimator(method, torch.cat([theta, designs], dim=1), outcomes,
                                         _joint_prior(task.prior, _design_box(task)), training, device)
    estimator.hyperparameters["design_input"] = "theta"
    return estimator, history


def train_marginal_likelihood(task: DesignTask, num_simulations: int, training: dict[str, Any], device: str = "cpu"):
    """The marginal flow :math:`q(x | \\xi)` of Klein et al.'s NLE estimator: an NLE flow conditioned
    on the design alone, trained on fresh joint draws (``design_input: marginal``)."""
    from sbi_core.estimators import train_estimator

    _, observed = design_training_set(task, num_simulations)
    steps = task.space.num_experiments
    estimator, history = train_estimator("nle", observed[:, steps:], observed[:, :steps], _design_box(task),
                                         training, device)
    estimator.hyperparameters["design_input"] = "marginal"
    return estimator, history


def _design_box(task: DesignTask):
    """The uniform distribution of the designs ``[T p]`` (flattened), as the training draws them."""
    from sbi_core.tasks.box import BoxUniform

    steps = task.space.num_experiments
    return BoxUniform(task.space.low.repeat(steps), task.space.high.repeat(steps))


def _joint_prior(prior, box):
    from sbi.utils import MultipleIndependent

    return MultipleIndependent([prior, box], validate_args=False)
