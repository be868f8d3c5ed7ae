"""Step `sample`: posterior samples for one (method, observation) as ArviZ InferenceData."""

from __future__ import annotations

import json
from typing import Any

import torch

from sbi_core.io import provenance, write_inference_data
from sbi_core.pipeline.common import load_observation, load_posterior
from sbi_core.seeding import derive_seed, seed_everything

__all__ = ["sample"]


def sample(
    task: dict[str, Any],
    name: str,
    method: str,
    observation_name: str,
    sampling: dict[str, Any],
    seed: int,
    device: str,
    estimator: str,
    observation: str,
    output: str,
) -> None:
    """Draws ``sampling.num_samples`` posterior samples given the observation; writes netCDF.

    Arguments:
        task: The analysis's task keys (:func:`~sbi_core.schema.task_settings`).
        sampling: The ``sampling`` keys the method reads (registry).
        device: Where the sampler runs.
    """
    built, posterior = load_posterior(task, name, estimator, sampling, device)
    x_o = load_observation(observation)["x_o"]
    seed_everything(derive_seed(seed, "sample", method, observation_name))
    samples = posterior.sample(torch.as_tensor(x_o)[None], sampling["num_samples"])[0].numpy()
    settings = {"task": task, "method": method, "sampling": sampling, "device": device}
    attrs = {
        "analysis": name,
        "task": task["task"],
        "method": method,
        "observation": observation_name,
        "provenance": json.dumps(provenance(settings, seed)),
    }
    write_inference_data(
        output,
        posterior={p: samples[None, :, i] for i, p in enumerate(built.parameter_names)},
        observed_data={"x": x_o},
        attrs=attrs,
    )
