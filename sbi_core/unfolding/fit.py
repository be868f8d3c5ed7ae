r"""Fits a source flow to a population by maximising its marginal likelihood (neural empirical Bayes).

The population stays where it is (on the CPU); each step moves one batch of
observations to the estimator's device and scores it against ``K`` atoms of the
source in one ``[K, B]`` pair matrix, so memory is bounded by the batch, not by
the size of the population. The estimator is frozen: only the source learns.

References:
    | Neural Empirical Bayes: Source Distribution Estimation and its Applications to
    | Simulation-Based Inference (Vandegar et al., 2021) https://arxiv.org/abs/2011.05836
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbi_core.sampling.support import LogRatioModel
from sbi_core.unfolding.objective import NEBLoss
from sbi_core.unfolding.source import SourceFlow

__all__ = ["FitSettings", "fit_source"]


@dataclass(frozen=True)
class FitSettings:
    """How the source is fitted (the config's ``unfolding.fit`` keys).

    Arguments:
        num_atoms: ``K``, source samples per step.
        estimator: ``biased`` (:math:`\\mathcal{L}_K`) or ``roulette`` (unbiased).
        roulette_probability: The roulette's geometric stopping probability.
        batch_size: Observations per step.
        steps: Optimiser steps. Batches run through the population in shuffled passes;
            the fit's cost does not grow with the population's size.
        learning_rate: Adam's initial rate, decayed to zero on a cosine.
        gradient_clip: Largest gradient norm per step.
    """

    num_atoms: int = 1024
    estimator: str = "biased"
    roulette_probability: float = 0.25
    batch_size: int = 256
    steps: int = 600
    learning_rate: float = 5e-3
    gradient_clip: float = 5.0

    @classmethod
    def from_config(cls, fit: dict[str, Any]) -> FitSettings:
        """Takes the known keys of a config block (the schema has checked them)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in fit.items() if key in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batches(size: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Endless shuffled passes over ``range(size)``, ``batch_size`` indices at a time."""
    while True:
        yield from torch.randperm(size, generator=generator).split(batch_size)


def fit_source(
    model: LogRatioModel,
    x: Tensor,
    source: SourceFlow,
    settings: FitSettings,
    efficiency: Callable[[Tensor], Tensor] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Fits ``source`` in place to the population ``x``; returns the loss history.

    The loss is the negative mean log marginal likelihood per observation, up to the
    estimator's constant per observation (zero for ratio estimators, whose log-ratio is
    calibrated against the training prior's evidence). The history holds its mean over
    each of (at most) 100 equal blocks of steps.

    Arguments:
        model: A trained estimator or any :class:`~sbi_core.sampling.LogRatioModel`; its
            device is where the fit runs.
        x: The population ``[n, *x_shape]`` (any device; batches are moved).
        source: The source to fit (moved to the model's device).
        settings: :class:`FitSettings`.
        efficiency: The task's detection probability, if events can be lost.
        seed: Seeds the batches, the atoms and the roulette.
        progress: Show a progress bar.

    Raises:
        FloatingPointError: If the loss becomes NaN or infinite (the estimator gives
            no finite ratio where the source puts its atoms).

    Example:
        >>> from sbi.utils import BoxUniform
        >>> from sbi_core.ratio import RatioEstimator
        >>> prior = BoxUniform(-torch.ones(1), torch.ones(1))
        >>> source = SourceFlow.for_prior(prior, transforms=1, hidden_features=[8])
        >>> losses = fit_source(RatioEstimator(1, [1]), torch.zeros(20, 1), source,
        ...                     FitSettings(num_atoms=8, batch_size=10, steps=4), progress=False)
        >>> len(losses)
        4
    """
    device = next(model.parameters()).device
    source.to(device).train()
    loss_fn = NEBLoss(model, settings.num_atoms, settings.estimator, settings.roulette_probability, efficiency)
    optimizer = torch.optim.Adam(source.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.steps)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    # Polyak averaging over the second half: the minibatch and atom noise of the last steps averages out.
    average = torch.optim.swa_utils.AveragedModel(source, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.99))
    block = max(1, math.ceil(settings.steps / 100))
    losses, running = [], []
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            batches = _batches(len(x), settings.batch_size, generator)
            bar = tqdm(range(settings.steps), desc="unfold: fitting the source", disable=not progress, mininterval=2)
            for step in bar:
                loss = loss_fn(source, x[next(batches)].to(device), generator)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"unfolding: the loss is {loss.item()} at step {step}; the estimator gives no finite "
                        "log-ratio where the source puts its atoms (check that the population matches the task)"
                    )
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(source.parameters(), settings.gradient_clip)
                optimizer.step()
                schedule.step()
                if step >= settings.steps // 2:
                    average.update_parameters(source)
                running.append(loss.item())
                if len(running) == block or step == settings.steps - 1:
                    losses.append(sum(running) / len(running))
                    running = []
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    if average.n_averaged > 0:
        source.load_state_dict(average.module.state_dict())
    source.eval()
    return losses
