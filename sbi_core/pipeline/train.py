"""Step `train`: fit one estimator on the training split; save weights, metadata, loss curve."""

from __future__ import annotations

import csv
import time

import torch

from sbi_core.estimators import require_device, save_estimator, train_estimator
from sbi_core.io import atomic_path, load_simulations, provenance, write_json
from sbi_core.plots import plot_loss
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import build_task

__all__ = ["train"]


def train(
    analysis: dict,
    name: str,
    method: str,
    simulations: str,
    estimator: str,
    metadata: str,
    history: str,
    loss_plot: str,
) -> None:
    """Trains `method` on the training simulations and writes its four artifacts."""
    task = build_task(analysis, f"analyses.{name}")
    theta, x = load_simulations(simulations)
    seed_everything(derive_seed(analysis["seed"], "train", method))
    start = time.perf_counter()
    network, hyperparameters, losses = train_estimator(
        method,
        torch.as_tensor(theta),
        torch.as_tensor(x),
        task.prior,
        analysis["training"],
        device=require_device(analysis["device"], f"analyses.{name}.device"),
    )
    seconds = time.perf_counter() - start
    hyperparameters.update(task=analysis["task"], parameter_names=list(task.parameter_names))
    record = provenance(analysis, analysis["seed"])
    save_estimator(estimator, network, hyperparameters, record)
    write_json(
        metadata,
        {
            "analysis": name,
            "method": method,
            "hyperparameters": hyperparameters,
            "training": analysis["training"],
            "num_simulations": len(theta),
            "epochs_trained": losses["epochs_trained"],
            "best_validation_loss": losses["best_validation_loss"],
            "training_seconds": seconds,
            "provenance": record,
        },
    )
    _write_history(history, losses)
    plot_loss(
        losses["training_loss"], losses["validation_loss"], loss_plot,
        title=f"{name}: {method.upper()} loss",
    )


def _write_history(path: str, losses: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "training_loss", "validation_loss"])
        for epoch, (train_loss, val_loss) in enumerate(
            zip(losses["training_loss"], losses["validation_loss"]), start=1
        ):
            writer.writerow([epoch, f"{train_loss:.6g}", f"{val_loss:.6g}"])
