"""Step `sample`: posterior samples for one (method, observation) as ArviZ InferenceData."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import torch

from sbi_core.estimators import build_posterior, load_estimator
from sbi_core.io import atomic_path, provenance
from sbi_core.pipeline.observe import load_observation
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import build_task

__all__ = ["sample", "posterior_samples"]


def sample(analysis: dict, name: str, method: str, observation_name: str, estimator: str, observation: str, output: str) -> None:
    """Draws `sampling.num_samples` posterior samples given the observation; writes netCDF."""
    task = build_task(analysis, f"analyses.{name}")
    network, hyperparameters = load_estimator(estimator)
    posterior = build_posterior(network, hyperparameters, task.prior, analysis["sampling"]["mcmc"])
    x_o = load_observation(observation)["x_o"]
    seed_everything(derive_seed(analysis["seed"], "sample", method, observation_name))
    samples = posterior_samples(posterior, x_o, analysis["sampling"]["num_samples"])
    attrs = {
        "analysis": name,
        "task": analysis["task"],
        "method": method,
        "observation": observation_name,
        "provenance": json.dumps(provenance(analysis, analysis["seed"])),
    }
    idata = az.from_dict(
        posterior={p: samples[None, :, i] for i, p in enumerate(task.parameter_names)},
        observed_data={"x": x_o},
    )
    for group in (idata.posterior, idata.observed_data):
        group.attrs.update(attrs)
    with atomic_path(output) as tmp:
        idata.to_netcdf(str(tmp))


def posterior_samples(posterior, x_o: np.ndarray, num_samples: int) -> np.ndarray:
    """Samples [num_samples, d] from an sbi posterior given one observation (flattened)."""
    x = torch.as_tensor(x_o, dtype=torch.float32).reshape(1, -1)
    return posterior.sample((num_samples,), x=x, show_progress_bars=True).numpy()
