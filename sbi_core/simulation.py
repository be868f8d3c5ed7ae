"""Sharded, seeded simulation and the merge that drops invalid rows.

A shard draws theta from the prior and runs the simulator under its own seed
(derived from the analysis seed, the split and the shard index), and stores every
row it simulated. The merge concatenates shards (or reads a user's file), drops
rows whose x holds NaN/inf, counts them, and fails when too many are invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from sbi_core.errors import SimulationError
from sbi_core.io import load_simulations
from sbi_core.seeding import derive_seed, seed_everything

if TYPE_CHECKING:  # the merge reads files only: its jobs do not load torch
    from sbi_core.tasks import Task

__all__ = ["shard_sizes", "simulate_shard", "simulate_at", "collect_simulations"]


def shard_sizes(total: int, shards: int) -> list[int]:
    """Splits `total` simulations into `shards` near-equal parts (earlier shards get the rest)."""
    base, rest = divmod(total, shards)
    return [base + (i < rest) for i in range(shards)]


def simulate_shard(
    task: Task,
    total: int,
    shards: int,
    shard: int,
    seed: int,
    split: str,
    chunk_size: int = 1000,
    time_limit: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulates shard `shard` of `shards` for a split; all rows, invalid ones included.

    Arguments:
        task: The task (prior and simulator).
        total: Simulations in the whole split.
        shards: Number of shards of the split.
        shard: Index of this shard.
        seed: The analysis seed; this shard's stream is ``(simulate, split, shard)``.
        split: ``train`` or ``test``.
        chunk_size: Rows per simulator call (for the progress bar and memory).
        time_limit: Seconds one simulator call may take (``simulations.time_limit``).

    Returns:
        theta [n, d] and x [n, ...] as float32 arrays.
    """
    num = shard_sizes(total, shards)[shard]
    shard_seed = derive_seed(seed, "simulate", split, shard)
    seed_everything(shard_seed)
    theta = task.prior.sample((num,)).float()
    xs = []
    label = f"simulate {split} shard {shard + 1}/{shards}"
    for start in tqdm(range(0, num, chunk_size), desc=label, unit="chunk", mininterval=5):
        batch = theta[start : start + chunk_size]
        try:
            xs.append(task.simulate(batch, time_limit))
        except Exception as error:  # the user's simulator: say where and with which seed
            raise SimulationError(
                f"{label} failed (analysis seed {seed}, shard seed {shard_seed}, rows "
                f"{start}..{start + len(batch) - 1}): {error!r}"
            ) from error
    import torch

    x = torch.cat(xs) if xs else torch.empty((0,))
    return theta.numpy(), x.numpy().astype(np.float32)


def simulate_at(task: Task, theta: list[float], seed: int, name: str) -> np.ndarray:
    """Simulates one observation at the given true parameters (stream ``(observe, name)``)."""
    import torch

    seed_everything(derive_seed(seed, "observe", name))
    x = task.simulate(torch.tensor([theta], dtype=torch.float32))
    return x[0].numpy().astype(np.float32)


def collect_simulations(
    paths: list[str], max_invalid_fraction: float, label: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Concatenates simulation files, drops rows with NaN/inf x, and checks how many were dropped.

    Arguments:
        paths: .npz files with `theta` and `x` (shards, or a user's file).
        max_invalid_fraction: Largest tolerated fraction of invalid rows.
        label: Names the split in messages, e.g. ``analyses.demo.simulations.train``.

    Returns:
        theta, x (valid rows only) and counts ``{num_simulated, num_invalid, num_valid}``.
    """
    parts = [load_simulations(path) for path in paths]
    theta = np.concatenate([t for t, _ in parts])
    x = np.concatenate([x for _, x in parts])
    valid = np.isfinite(x.reshape(len(x), -1)).all(axis=1) & np.isfinite(theta).all(axis=1)
    num_invalid = int((~valid).sum())
    fraction = num_invalid / max(len(x), 1)
    if len(x) == 0 or fraction > max_invalid_fraction:
        raise SimulationError(
            f"{label}: {num_invalid} of {len(x)} simulations ({fraction:.1%}) have NaN/inf values, "
            f"above max_invalid_fraction={max_invalid_fraction}; fix the simulator or raise "
            "simulations.max_invalid_fraction"
        )
    counts = {"num_simulated": len(x), "num_invalid": num_invalid, "num_valid": int(valid.sum())}
    return theta[valid], x[valid], counts
