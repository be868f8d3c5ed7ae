"""Step `sample`: posterior samples for one (method, observation) as ArviZ InferenceData."""

from __future__ import annotations

import json

import arviz as az
import torch

from sbi_core.io import atomic_path, provenance
from sbi_core.pipeline.common import load_posterior
from sbi_core.pipeline.observe import load_observation
from sbi_core.seeding import derive_seed, seed_everything

__all__ = ["sample"]


def sample(analysis: dict, name: str, method: str, observation_name: str, estimator: str, observation: str, output: str) -> None:
    """Draws `sampling.num_samples` posterior samples given the observation; writes netCDF."""
    task, posterior = load_posterior(analysis, name, estimator)
    x_o = load_observation(observation)["x_o"]
    seed_everything(derive_seed(analysis["seed"], "sample", method, observation_name))
    samples = posterior.sample(torch.as_tensor(x_o)[None], analysis["sampling"]["num_samples"])[0].numpy()
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

