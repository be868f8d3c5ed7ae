"""Steps `simulate` (one shard) and `collect` (merge shards or import a user's file)."""

from __future__ import annotations

import logging

from sbi_core.io import provenance, save_simulations, write_json
from sbi_core.simulation import collect_simulations, simulate_shard
from sbi_core.tasks import build_task

__all__ = ["simulate", "collect"]

log = logging.getLogger(__name__)


def simulate(analysis: dict, name: str, split: str, shard: int, output: str) -> None:
    """Simulates one shard of a split and saves all its rows (invalid ones are dropped at collect)."""
    task = build_task(analysis, f"analyses.{name}")
    simulations = analysis["simulations"]
    theta, x = simulate_shard(
        task, simulations[split], simulations["shards"], shard, analysis["seed"], split
    )
    save_simulations(output, theta, x, provenance(analysis, analysis["seed"]))
    log.info("%s: simulated %d rows for %s shard %d", name, len(theta), split, shard)


def collect(analysis: dict, name: str, split: str, inputs: list[str], output: str, metadata: str) -> None:
    """Merges shard files (or reads the user's file), drops invalid rows, writes data + metadata."""
    label = f"analyses.{name}.simulations.{split}"
    theta, x, counts = collect_simulations(
        inputs, analysis["simulations"]["max_invalid_fraction"], label
    )
    record = provenance(analysis, analysis["seed"])
    save_simulations(output, theta, x, record)
    source = analysis["simulations"][split]
    write_json(
        metadata,
        {
            "analysis": name,
            "task": analysis["task"],
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
