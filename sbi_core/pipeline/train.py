"""Step `train`: fit one estimator on the training split; save weights, metadata, loss curve."""

from __future__ import annotations

import csv
import time
from typing import Any

import torch

from sbi_core.estimators import require_device, train_estimator
from sbi_core.io import atomic_path, load_simulations, provenance, write_json
from sbi_core.plots import plot_loss
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import build_task

__all__ = ["train"]


def train(
    task: dict[str, Any],
    name: str,
    method: str,
    training: dict[str, Any],
    seed: int,
    device: str,
    simulations: str,
    estimator: str,
    metadata: str,
    history: str,
    loss_plot: str,
) -> None:
    """Trains `method` on the training simulations and writes its four artifacts.

    Arguments:
        task: The analysis's task keys (:func:`~sbi_core.schema.task_settings`).
        name: The analysis name.
        method: A method of :mod:`~sbi_core.estimators.registry`.
        training: The ``training`` keys the method reads.
        seed: The analysis seed.
        device: ``cpu`` or ``cuda``: where it trains.
        simulations: The training split (.npz).
        estimator, metadata, history, loss_plot: The four outputs.
    """
    built = build_task(task, f"analyses.{name}")
    theta, x = load_simulations(simulations)
    seed_everything(derive_seed(seed, "train", method))
    start = time.perf_counter()
    trained, losses = train_estimator(
        method,
        torch.as_tensor(theta),
        torch.as_tensor(x),
        built.prior,
        training,
        device=require_device(device, f"analyses.{name}.device"),
    )
    seconds = time.perf_counter() - start
    trained.hyperparameters.update(task=task["task"], parameter_names=list(built.parameter_names))
    record = provenance({"task": task, "method": method, "training": training, "device": device}, seed)
    trained.save(estimator, record)
    write_json(
        metadata,
        {
            "analysis": name,
            "method": method,
            "hyperparameters": trained.hyperparameters,
            "training": training,
            "device": device,
            "num_simulations": len(theta),
            "epochs_trained": losses["epochs_trained"],
            "best_validation_loss": losses["best_validation_loss"],
            **_members_summary(losses),
            "training_seconds": seconds,
            "provenance": record,
        },
    )
    write_loss_history(history, losses)
    members = losses.get("members", [losses])
    plot_loss(
        losses["training_loss"], losses["validation_loss"], loss_plot,
        title=f"{name}: {method.upper()} loss" + (f", {len(members)} ensemble members" if len(members) > 1 else ""),
        members=[(member["training_loss"], member["validation_loss"]) for member in members[1:]],
    )


def _members_summary(losses: dict) -> dict:
    """An ensemble's spread over its members (nothing for one estimator)."""
    members = losses.get("members")
    if not members:
        return {}
    return {"ensemble_members": [
        {"epochs_trained": member["epochs_trained"], "best_validation_loss": member["best_validation_loss"]}
        for member in members
    ]}


def write_loss_history(path: str, losses: dict) -> None:
    """The loss curve as CSV: epoch, training and validation loss; an ensemble adds a pair of
    columns per further member (``training_loss_2``, ...), empty after that member stopped."""
    curves = [(member["training_loss"], member["validation_loss"]) for member in losses.get("members", [losses])]
    header = ["epoch", "training_loss", "validation_loss"]
    for k in range(2, len(curves) + 1):
        header += [f"training_loss_{k}", f"validation_loss_{k}"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for epoch in range(max(len(training) for training, _ in curves)):
            row = [epoch + 1]
            for training, validation in curves:
                row += [f"{curve[epoch]:.6g}" if epoch < len(curve) else "" for curve in (training, validation)]
            writer.writerow(row)
