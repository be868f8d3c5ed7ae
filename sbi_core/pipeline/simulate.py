"""Steps `simulate` (one shard) and `collect` (merge shards or import a user's file)."""

from __future__ import annotations

import logging
from typing import Any

from sbi_core.io import provenance, save_simulations, write_json
from sbi_core.simulation import collect_simulations, simulate_shard

__all__ = ["simulate", "collect"]

log = logging.getLogger(__name__)


def simulate(
    task: dict[str, Any],
    name: str,
    split: str,
    num_simulations: int,
    shards: int,
    shard: int,
    seed: int,
    time_limit: float,
    output: str,
) -> None:
    """Simulates one shard of a split and saves all its rows (invalid ones are dropped at collect).

    Arguments:
        task: The analysis's task keys (:func:`~sbi_core.schema.task_settings`).
        name: The analysis name.
        split: ``train`` or ``test``.
        num_simulations: Simulations in the whole split (``simulations.<split>``).
        shards: Shards of the split (``simulations.shards``); this is shard `shard`.
        seed: The analysis seed.
        time_limit: Seconds one simulator call may take (``simulations.time_limit``).
        output: The shard's .npz file.
    """
    from sbi_core.tasks import build_task  # here: the merge step shares this module and needs no torch

    settings = {"task": task, "split": split, "num_simulations": num_simulations, "shards": shards}
    built = build_task(task, f"analyses.{name}")
    theta, x = simulate_shard(built, num_simulations, shards, shard, seed, split, time_limit=time_limit)
    save_simulations(output, theta, x, provenance(settings, seed))
    log.info("%s: simulated %d rows for %s shard %d", name, len(theta), split, shard)


def collect(
    task_name: str,
    name: str,
    split: str,
    source: int | str,
    max_invalid_fraction: float,
    seed: int,
    inputs: list[str],
    output: str,
    metadata: str,
) -> None:
    """Merges shard files (or reads the user's file), drops invalid rows, writes data + metadata.

    Arguments:
        task_name: The analysis's ``task`` (recorded).
        source: ``simulations.<split>``: a number of simulations, or the user's .npz file.
        max_invalid_fraction: ``simulations.max_invalid_fraction``.
    """
    label = f"analyses.{name}.simulations.{split}"
    theta, x, counts = collect_simulations(inputs, max_invalid_fraction, label)
    record = provenance({"source": source, "max_invalid_fraction": max_invalid_fraction}, seed)
    save_simulations(output, theta, x, record)
    write_json(
        metadata,
        {
            "analysis": name,
            "task": task_name,
            "split": split,
            "source": source if isinstance(source, str) else "simulated",
            "shards": len(inputs),
            **counts,
            "theta_shape": list(theta.shape),
            "x_shape": list(x.shape),
            "provenance": record,
        },
    )
    log.info("%s: %s split has %d valid rows (%d invalid dropped)", name, split, counts["num_valid"], counts["num_invalid"])
