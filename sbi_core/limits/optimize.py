r"""Batched local maximisers inside a box: projected Adam (with gradients) and Nelder-Mead (without).

Each maximises ``P`` independent problems at once, an objective
``theta [P, C, d] -> [P, C]`` evaluating ``C`` candidates per problem in one call
(``-inf`` where a candidate is invalid). Only the coordinates marked ``free``
move; the others stay at their starting values. Both work in coordinates scaled
by ``scale`` (e.g. the prior's standard deviations), so that one step size suits
parameters of very different spreads, and clamp every candidate into the box
``[low, high]``. Both run a fixed number of steps, so they are deterministic.

References:
    | Adam: A Method for Stochastic Optimization (Kingma & Ba, 2015)
    | https://arxiv.org/abs/1412.6980
    | A Simplex Method for Function Minimization (Nelder & Mead, 1965)
    | https://doi.org/10.1093/comjnl/7.4.308
    | Implementing the Nelder-Mead simplex algorithm with adaptive parameters (Gao & Han, 2012)
    | https://doi.org/10.1007/s10589-010-9329-3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["Objective", "maximise_adam", "maximise_nelder_mead"]

Objective = Callable[[Tensor], Tensor]
"""``theta [P, C, d] -> [P, C]`` (float64), ``-inf`` where ``theta`` is invalid."""

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


def maximise_adam(
    objective: Objective,
    start: Tensor,
    free: Tensor,
    low: Tensor,
    high: Tensor,
    scale: Tensor,
    num_steps: int,
    learning_rate: float = 0.05,
) -> tuple[Tensor, Tensor]:
    """Maximises a differentiable objective by projected Adam with a cosine-decaying step size.

    The gradient comes from autograd through ``objective``; after every step the
    free coordinates are clamped into the box. The best point seen is returned.

    Arguments:
        objective: ``theta [P, C, d] -> [P, C]``, differentiable in ``theta``.
        start: Starting points ``[P, d]`` (float64), inside the box.
        free: Which coordinates move, bool ``[d]``.
        low: Lower ends of the box ``[d]``.
        high: Upper ends of the box ``[d]``.
        scale: The unit of each coordinate ``[d]`` (> 0); ``learning_rate`` is in these units.
        num_steps: The number of Adam steps.
        learning_rate: The initial step size, in units of ``scale``.

    Returns:
        The maximisers ``[P, d]`` and the maxima ``[P]`` (float64).

    Example:
        >>> objective = lambda theta: -(theta**2).sum(-1)
        >>> low, high = torch.full((2,), -5.0), torch.full((2,), 5.0)
        >>> theta, value = maximise_adam(objective, torch.ones(1, 2, dtype=torch.float64),
        ...     torch.tensor([True, False]), low, high, torch.ones(2), 300)
        >>> theta.round(decimals=3)
        tensor([[0., 1.]], dtype=torch.float64)
    """
    coordinates = _Coordinates(objective, start, free, low, high, scale)
    y = coordinates.initial()
    best_y, best_value = y.clone(), torch.full((len(y),), -math.inf, dtype=torch.float64)
    first_moment, second_moment = torch.zeros_like(y), torch.zeros_like(y)
    beta_1, beta_2 = _ADAM_BETAS
    for step in range(num_steps + 1):
        leaf = y.detach().requires_grad_()
        value = coordinates.value(leaf[:, None, :])[:, 0]
        better = value.detach() > best_value
        best_y[better], best_value[better] = y[better], value.detach()[better]
        if step == num_steps:
            break
        # An invalid candidate contributes no gradient; momentum carries it on.
        (gradient,) = torch.autograd.grad(torch.where(value.isfinite(), value, 0.0).sum(), leaf)
        gradient = torch.nan_to_num(gradient, nan=0.0, posinf=0.0, neginf=0.0)
        first_moment = beta_1 * first_moment + (1 - beta_1) * gradient
        second_moment = beta_2 * second_moment + (1 - beta_2) * gradient**2
        corrected_first = first_moment / (1 - beta_1 ** (step + 1))
        corrected_second = second_moment / (1 - beta_2 ** (step + 1))
        step_size = learning_rate * 0.5 * (1 + math.cos(math.pi * step / num_steps))
        y = coordinates.clamp(y + step_size * corrected_first / (corrected_second.sqrt() + _ADAM_EPS))
    return coordinates.theta(best_y[:, None, :])[:, 0].detach(), best_value


def maximise_nelder_mead(
    objective: Objective,
    start: Tensor,
    free: Tensor,
    low: Tensor,
    high: Tensor,
    scale: Tensor,
    num_steps: int,
    initial_steps: Sequence[float] = (0.3, 0.05, 0.01),
) -> tuple[Tensor, Tensor]:
    """Maximises an objective without gradients: batched Nelder-Mead, restarted with shrinking simplices.

    Each problem runs its own simplex (adaptive coefficients of Gao & Han for
    ``n >= 2`` free coordinates); every iteration evaluates the reflection,
    expansion and both contractions of all problems in one call, and the shrunk
    simplices in a second call when some problem shrinks. The ``num_steps``
    iterations are split between restarts around the best point so far, with
    initial simplex edges ``initial_steps`` (in units of ``scale``): a restart
    undoes a simplex collapsed against the box.

    Arguments:
        objective: ``theta [P, C, d] -> [P, C]``.
        start: Starting points ``[P, d]`` (float64), inside the box.
        free: Which coordinates move, bool ``[d]``.
        low: Lower ends of the box ``[d]``.
        high: Upper ends of the box ``[d]``.
        scale: The unit of each coordinate ``[d]`` (> 0).
        num_steps: The number of iterations, all restarts together.
        initial_steps: The initial simplex edge of each restart, in units of ``scale``.

    Returns:
        The maximisers ``[P, d]`` and the maxima ``[P]`` (float64).

    Example:
        >>> objective = lambda theta: -((theta - 0.5) ** 2).sum(-1)
        >>> theta, value = maximise_nelder_mead(objective, torch.zeros(1, 2, dtype=torch.float64),
        ...     torch.tensor([True, True]), torch.zeros(2), torch.ones(2), torch.ones(2), 200)
        >>> theta.round(decimals=4)
        tensor([[0.5000, 0.5000]], dtype=torch.float64)
    """
    coordinates = _Coordinates(objective, start, free, low, high, scale)
    best_y = coordinates.initial()
    best_cost = coordinates.cost(best_y[:, None, :])[:, 0]
    n = best_y.shape[1]
    if n == 0 or num_steps <= 0:
        return coordinates.theta(best_y[:, None, :])[:, 0], -best_cost
    size = max(n, 2)
    # Reflection, expansion, outside and inside contraction; shrink (Gao & Han, 2012).
    alpha, beta, rho, sigma = 1.0, 1 + 2 / size, 0.75 - 1 / (2 * size), 1 - 1 / size
    moves = torch.tensor([alpha, alpha * beta, alpha * rho, -rho], dtype=torch.float64)
    rows = torch.arange(len(best_y))
    per_restart = math.ceil(num_steps / len(initial_steps))
    for edge in initial_steps:
        simplex = coordinates.initial_simplex(best_y, edge)
        costs = coordinates.cost(simplex)
        for _ in range(per_restart):
            order = costs.argsort(dim=1)
            simplex = simplex.gather(1, order[..., None].expand_as(simplex))
            costs = costs.gather(1, order)
            centroid = simplex[:, :-1].mean(1)
            direction = centroid - simplex[:, -1]
            candidates = coordinates.clamp(
                centroid[:, None, :] + moves[None, :, None] * direction[:, None, :]
            )
            reflected, expanded, outside, inside = coordinates.cost(candidates).unbind(1)
            best, second_worst, worst = costs[:, 0], costs[:, -2], costs[:, -1]
            choice = torch.full((len(simplex),), -1, dtype=torch.long)
            choice = torch.where(reflected < best, torch.where(expanded < reflected, 1, 0), choice)
            choice = torch.where((reflected >= best) & (reflected < second_worst), 0, choice)
            between = (reflected >= second_worst) & (reflected < worst)
            choice = torch.where(between & (outside <= reflected), 2, choice)
            choice = torch.where((reflected >= worst) & (inside < worst), 3, choice)
            accepted = choice >= 0
            candidate_costs = torch.stack([reflected, expanded, outside, inside], 1)
            simplex[accepted, -1] = candidates[rows[accepted], choice[accepted]]
            costs[accepted, -1] = candidate_costs[rows[accepted], choice[accepted]]
            shrink = ~accepted
            if shrink.any():
                shrunk = simplex[:, :1] + sigma * (simplex[:, 1:] - simplex[:, :1])
                shrunk_costs = coordinates.cost(shrunk)
                simplex[shrink, 1:], costs[shrink, 1:] = shrunk[shrink], shrunk_costs[shrink]
        lowest = costs.argmin(1)
        better = costs[rows, lowest] < best_cost
        best_y[better], best_cost[better] = simplex[rows, lowest][better], costs[rows, lowest][better]
    return coordinates.theta(best_y[:, None, :])[:, 0], -best_cost


class _Coordinates:
    """The free coordinates of ``P`` problems in units of ``scale``: ``y = theta[free] / scale``."""

    def __init__(
        self, objective: Objective, start: Tensor, free: Tensor, low: Tensor, high: Tensor, scale: Tensor
    ):
        self.objective = objective
        self.start = start.detach().to(torch.float64)
        self.index = torch.nonzero(free).flatten()
        self.scale = scale.to(torch.float64)[self.index]
        self.low = low.to(torch.float64)[self.index] / self.scale
        self.high = high.to(torch.float64)[self.index] / self.scale

    def initial(self) -> Tensor:
        return self.clamp(self.start[:, self.index] / self.scale)

    def initial_simplex(self, y: Tensor, edge: float) -> Tensor:
        """``y`` and ``y + edge e_i`` (``- edge`` where that leaves the box): ``[P, n + 1, n]``."""
        n = y.shape[1]
        steps = edge * torch.eye(n, dtype=torch.float64)
        up = y[:, None, :] + steps
        down = y[:, None, :] - steps
        vertices = torch.where(up <= self.high, up, down)
        return self.clamp(torch.cat([y[:, None, :], vertices], 1))

    def clamp(self, y: Tensor) -> Tensor:
        return torch.maximum(torch.minimum(y, self.high), self.low)

    def theta(self, y: Tensor) -> Tensor:
        """``y [P, C, n] -> theta [P, C, d]``, the fixed coordinates from ``start``."""
        num_problems, num_candidates = y.shape[:2]
        theta = self.start[:, None, :].expand(num_problems, num_candidates, -1).clone()
        theta[..., self.index] = y * self.scale
        return theta

    def value(self, y: Tensor) -> Tensor:
        value = self.objective(self.theta(y))
        return torch.where(value.isnan(), -math.inf, value)

    def cost(self, y: Tensor) -> Tensor:
        with torch.no_grad():
            return -self.value(y)
