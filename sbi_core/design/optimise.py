"""Finding the best design: multi-start gradient ascent in one tensor, and a candidate search.

Klein et al. (2026) find the optimiser, not the EIG estimator, to be the bottleneck of
simulation-based design: single-start ascent stalls in local optima of a noisy objective.
Here ``S`` starts move together, as one ``[S, T, p]`` tensor, by Adam on stochastic EIG
estimates, in the box's unit coordinates (one learning rate for every variable), with each
start's gradient norm clipped and each step projected back into the box. The optimiser's
own estimate of the winner is biased upward (it was picked for being high): re-estimate
it on fresh simulations.

References:
    | Supercharging Simulation-Based Inference for Bayesian Optimal Experimental Design
    | (Klein et al., 2026) https://arxiv.org/abs/2602.06900
    | Adam: A Method for Stochastic Optimization (Kingma & Ba, 2015) https://arxiv.org/abs/1412.6980
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbi_core.design.space import DesignSpace

__all__ = ["AscentResult", "multistart_ascent", "candidate_search"]

Objective = Callable[[Tensor], Tensor]  # designs [S, T, p] -> EIG estimates [S], differentiable


@dataclass(frozen=True)
class AscentResult:
    """The starts' paths ``[steps + 1, S, T, p]`` and objective values ``[steps, S]`` (detached,
    on the CPU), and the final designs ``[S, T, p]``."""

    paths: Tensor
    values: Tensor
    final: Tensor


def multistart_ascent(
    objective: Objective,
    space: DesignSpace,
    num_starts: int = 64,
    steps: int = 200,
    learning_rate: float = 0.02,
    max_grad_norm: float = 1.0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> AscentResult:
    """Maximises `objective` from `num_starts` uniform starts in the box, all in one tensor.

    Arguments:
        objective: ``designs [S, T, p] -> [S]``, a stochastic EIG estimate differentiable in
            the designs (e.g. ``lambda d: likelihood_eig(task, d, 64, 64).eig``).
        space: The box.
        num_starts: ``S``.
        steps: Adam steps.
        learning_rate: In units of the box's width per variable.
        max_grad_norm: Each start's gradient (in unit coordinates) is clipped to this norm.
        generator: Seeds the starts.
        device: Where the designs live (the objective runs there).
        progress: A progress bar.

    Returns:
        :class:`AscentResult`.

    Example:
        >>> space = DesignSpace.from_bounds([-1.0], [1.0])
        >>> result = multistart_ascent(lambda d: -(d[:, 0, 0] - 0.3) ** 2, space, 4, 300, 0.05, progress=False)
        >>> bool(torch.allclose(result.final[:, 0, 0], torch.tensor(0.3), atol=1e-2))
        True
    """
    low, high = space.low.to(device), space.high.to(device)
    unit = torch.rand(num_starts, *space.shape, generator=generator).to(device).requires_grad_(True)
    optimiser = torch.optim.Adam([unit], lr=learning_rate)
    paths, values = [unit.detach().cpu().clone()], []
    for _ in tqdm(range(steps), desc="design: ascent", disable=not progress):
        optimiser.zero_grad()
        value = objective(low + (high - low) * unit)
        (-value.sum()).backward()  # the starts are independent: the sum's gradient is each start's own
        with torch.no_grad():
            norms = unit.grad.flatten(1).norm(dim=1).clamp_min(1e-12)
            unit.grad.mul_((max_grad_norm / norms).clamp(max=1.0)[:, None, None])
        optimiser.step()
        with torch.no_grad():
            unit.clamp_(0.0, 1.0)
        paths.append(unit.detach().cpu().clone())
        values.append(value.detach().cpu())
    scale = lambda u: space.low + (space.high - space.low) * u  # noqa: E731
    return AscentResult(scale(torch.stack(paths)), torch.stack(values), scale(paths[-1]))


def candidate_search(objective: Objective, candidates: Tensor, batch_size: int = 1024) -> Tensor:
    """The objective at every candidate design ``[C, T, p]`` (e.g. :meth:`DesignSpace.grid`),
    in batches of `batch_size` designs, without gradients: ``[C]``."""
    with torch.no_grad():
        return torch.cat([objective(candidates[s:s + batch_size]).cpu()
                          for s in range(0, len(candidates), batch_size)])
