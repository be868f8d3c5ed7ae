r"""A learned, differentiable stand-in for a black-box simulator, so that gradient ascent can run.

Gradient ascent on the EIG needs :math:`\partial x / \partial \xi`, which a black-box simulator
(Poisson counts, compiled code) does not give. The design NLE flow :math:`q(x | \theta, \xi)`
(:func:`~sbi_core.design.training.train_design_estimator`) does: sampled by reparametrisation,
:math:`x = T^{-1}(z; \theta, \xi)` with :math:`z \sim \mathcal{N}(0, I)`, its draws carry the
design's gradient, and its density is the surrogate's likelihood (Klein et al. 2026). The ascent
then optimises the EIG of the learned model; the pipeline re-estimates the winner on the real
simulator.

References:
    | Supercharging Simulation-Based Inference for Bayesian Optimal Experimental Design
    | (Klein et al., 2026) https://arxiv.org/abs/2602.06900
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from sbi_core.design.eig import design_input
from sbi_core.design.tasks import DesignTask

__all__ = ["surrogate_task"]


def surrogate_task(task: DesignTask, estimator) -> DesignTask:
    """`task` with simulator and likelihood from a design NLE flow ``q(x | theta, xi)``: differentiable.

    Arguments:
        task: The real task (prior and design space are kept).
        estimator: A design NLE (``design_input: theta``), trained on `task`.

    Returns:
        A :class:`~sbi_core.design.tasks.DesignTask` whose ``simulate`` draws ``x`` by
        reparametrisation and whose ``log_likelihood`` is the flow's, both on the estimator's
        device and differentiable in the design.
    """
    if design_input(estimator) != "theta":
        raise ValueError(f"a surrogate simulator needs the design NLE q(x | theta, xi), not {estimator.method}")
    network, device = estimator.network, estimator.device

    def simulate(theta: Tensor, design: Tensor) -> Tensor:
        condition = torch.cat([theta, design.flatten(-2)], dim=-1).to(device)
        return network.rsample((1,), condition=condition)[0]

    def log_likelihood(theta: Tensor, x: Tensor, design: Tensor) -> Tensor:
        theta, x, design = (t.to(device) for t in (theta, x, design))
        batch = torch.broadcast_shapes(theta.shape[:-1], x.shape[:-1], design.shape[:-2])
        condition = torch.cat([theta.expand(*batch, -1), design.flatten(-2).expand(*batch, -1)], dim=-1)
        outcomes = x.expand(*batch, -1)
        return network.log_prob(outcomes.reshape(1, -1, outcomes.shape[-1]),
                                condition=condition.reshape(-1, condition.shape[-1]))[0].reshape(batch)

    return replace(task, name=f"{task.name} (NLE surrogate)", simulator=simulate, log_likelihood=log_likelihood,
                   differentiable=True)
