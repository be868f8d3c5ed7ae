"""Steps `observe` (one observation as a file) and `reference_posterior` (its reference samples, if any)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sbi_core.errors import SimulationError
from sbi_core.io import npz_array_shapes, provenance, read_array, read_observation, save_arrays
from sbi_core.pipeline.common import load_observation
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.simulation import simulate_at
from sbi_core.tasks import build_task

__all__ = ["observe", "reference_posterior"]


def observe(
    task: dict[str, Any], name: str, observation: dict[str, Any], seed: int, simulations: str | None, output: str
) -> None:
    """Writes `x_o`, and when known `theta_true`, to an .npz file.

    The observation is read from its file (:func:`~sbi_core.io.read_observation`: the
    simulations' shape of x, or ``[1, ...]`` of it, all finite), taken from the task's own
    data (a HistFactory workspace's observations), or simulated at its true parameters
    (refused if the simulator gives NaN/inf there).

    Arguments:
        task: The analysis's task keys (:func:`~sbi_core.schema.task_settings`).
        name: The analysis name.
        observation: Its entry in ``observations``: ``name`` and one of ``theta``,
            ``file``, ``from_workspace``.
        seed: The analysis seed.
        simulations: The training simulations (.npz), whose shape of x an observation
            file must have; None for the other observations.
        output: The .npz file.
    """
    built = build_task(task, f"analyses.{name}")
    arrays = {}
    if "theta" in observation:
        arrays["theta_true"] = np.asarray(observation["theta"], dtype=np.float32)
        arrays["x_o"] = simulate_at(built, observation["theta"], seed, observation["name"])
        if not np.isfinite(arrays["x_o"]).all():
            raise SimulationError(
                f"analyses.{name}.observations: {observation['name']}: the simulator returned NaN/inf at "
                f"theta {observation['theta']}; an observation must be finite"
            )
    elif observation.get("from_workspace"):
        arrays["x_o"] = built.observed_data.numpy()
    else:
        arrays["x_o"] = read_observation(observation["file"], npz_array_shapes(simulations)["x"][1:])
    save_arrays(output, arrays, provenance({"task": task, "observation": observation}, seed))


def reference_posterior(
    task: dict[str, Any],
    name: str,
    observation_name: str,
    seed: int,
    num_samples: int,
    observation: str,
    samples_file: str | None,
    output: str,
) -> None:
    """Writes the observation's reference posterior samples ``[n, d]`` (C2ST, pair plots) to an .npz file.

    They come from the user's `samples_file` (an observation's ``reference_samples``),
    else `num_samples` draws of the task's exact reference posterior, else there are
    none (an empty ``[0, d]`` array). A file of its own, so that a C2ST setting never
    reruns the sampling that depends on the observation.
    """
    built = build_task(task, f"analyses.{name}")
    if samples_file is not None:
        samples = read_array(samples_file)
    elif built.reference_posterior is not None:
        seed_everything(derive_seed(seed, "reference", observation_name))
        samples = built.reference_posterior(torch.as_tensor(load_observation(observation)["x_o"]), num_samples).numpy()
    else:
        samples = np.zeros((0, built.dim_theta))
    settings = {"task": task, "num_samples": num_samples, "samples_file": samples_file}
    save_arrays(output, {"reference_samples": samples.astype(np.float32)}, provenance(settings, seed))
