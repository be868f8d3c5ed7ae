"""What several steps share: the task and the posterior of a saved estimator, and posterior files."""

from __future__ import annotations

import arviz as az
import numpy as np

from sbi_core.estimators import PosteriorEstimate, build_posterior, load_estimator, require_device
from sbi_core.tasks import Task, build_task

__all__ = ["load_posterior", "read_posterior_samples"]


def load_posterior(analysis: dict, name: str, estimator: str) -> tuple[Task, PosteriorEstimate]:
    """The analysis's task and the batched posterior (sampler and log-density) of the estimator file."""
    task = build_task(analysis, f"analyses.{name}")
    network, hyperparameters = load_estimator(estimator)
    device = require_device(analysis["device"], f"analyses.{name}.device")
    return task, build_posterior(network, hyperparameters, task.prior, analysis["sampling"], device)


def read_posterior_samples(path: str, parameter_names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Reads posterior samples [n, d] (chains stacked) from an InferenceData netCDF file."""
    posterior = az.from_netcdf(path).posterior
    return np.stack([posterior[p].values.reshape(-1) for p in parameter_names], axis=-1)
