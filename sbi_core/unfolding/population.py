"""Populations of recorded events: simulated from a source (closure tests, regeneration checks).

Each event draws theta from the source; a detector with an efficiency records it
with probability eps(theta) (the task's ``efficiency``), and only recorded events
are simulated and kept, as a real detector's data would be. Rows whose x holds
NaN or inf are dropped and counted.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Distribution
from tqdm.auto import tqdm

from sbi_core.errors import SimulationError
from sbi_core.tasks import Task

__all__ = ["simulate_population"]


@torch.no_grad()
def simulate_population(
    task: Task, source: Distribution, size: int, seed: int, chunk_size: int = 10_000, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, int]:
    """Simulates ``size`` recorded events from ``source``.

    Arguments:
        task: The task (simulator, and its efficiency if events can be lost).
        source: Where theta comes from.
        size: Recorded events wanted.
        seed: Seeds the source, the detector and the simulator.
        chunk_size: Events per simulator call.
        progress: Show a progress bar.

    Returns:
        theta ``[size, d]``, x ``[size, ...]`` (float32) and the number of invalid rows dropped.

    Raises:
        SimulationError: If almost nothing is recorded or valid (fewer than 1 in 1000 events).
    """
    generator = torch.Generator().manual_seed(seed)
    thetas, xs = [], []
    kept = dropped = drawn = 0
    with torch.random.fork_rng(devices=[]), tqdm(total=size, desc="population", disable=not progress) as bar:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        while kept < size:
            if drawn > 1000 * max(size, 1) and kept < drawn / 1000:
                raise SimulationError(
                    f"task {task.name!r}: fewer than 1 in 1000 events from the source are recorded and valid "
                    f"({kept} of {drawn}); check the source, the efficiency and the simulator"
                )
            theta = source.sample((chunk_size,)).float()
            drawn += len(theta)
            if task.efficiency is not None:
                recorded = torch.rand(len(theta), generator=generator) < task.efficiency(theta)
                theta = theta[recorded]
            if not len(theta):
                continue
            x = task.simulate(theta)
            valid = torch.isfinite(x.reshape(len(x), -1)).all(1)
            dropped += int((~valid).sum())
            thetas.append(theta[valid])
            xs.append(x[valid])
            kept += int(valid.sum())
            bar.update(min(int(valid.sum()), size - bar.n))
    theta, x = torch.cat(thetas)[:size], torch.cat(xs)[:size]
    return theta.numpy(), x.numpy(), dropped
