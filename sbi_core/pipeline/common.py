"""What several steps share: the task and a posterior sampler for a saved estimator."""

from __future__ import annotations

from sbi_core.estimators import build_sampler, load_estimator, require_device
from sbi_core.estimators.methods import Sampler
from sbi_core.tasks import Task, build_task

__all__ = ["load_sampler"]


def load_sampler(analysis: dict, name: str, estimator: str) -> tuple[Task, Sampler]:
    """The analysis's task and ``sample(x [M, ...], num_samples) -> [M, S, d]`` for the estimator file."""
    task = build_task(analysis, f"analyses.{name}")
    network, hyperparameters = load_estimator(estimator)
    device = require_device(analysis["device"], f"analyses.{name}.device")
    return task, build_sampler(network, hyperparameters, task.prior, analysis["sampling"], device)
