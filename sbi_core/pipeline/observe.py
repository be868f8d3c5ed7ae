"""Step `observe`: one observation as a file, with its reference posterior samples if any."""

from __future__ import annotations

import numpy as np
import torch

from sbi_core.io import provenance, read_array, save_arrays
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.simulation import simulate_at
from sbi_core.tasks import build_task

__all__ = ["observe", "load_observation"]


def observe(analysis: dict, name: str, observation_name: str, output: str) -> None:
    """Writes `x_o`, and when known `theta_true` and `reference_samples`, to an .npz file.

    The observation is read from its file, taken from the task's own data (a
    HistFactory workspace's observations), or simulated at its true parameters.
    Reference posterior samples come from the observation's `reference_samples`
    file, else from the task's exact reference posterior, else there are none.
    """
    spec = next(o for o in analysis["observations"] if o["name"] == observation_name)
    task = build_task(analysis, f"analyses.{name}")
    arrays = {}
    if "theta" in spec:
        arrays["theta_true"] = np.asarray(spec["theta"], dtype=np.float32)
        arrays["x_o"] = simulate_at(task, spec["theta"], analysis["seed"], observation_name)
    elif spec.get("from_workspace"):
        arrays["x_o"] = task.observed_data.numpy()
    else:
        arrays["x_o"] = read_array(spec["file"])
    if "reference_samples" in spec:
        arrays["reference_samples"] = read_array(spec["reference_samples"])
    elif task.reference_posterior is not None:
        seed_everything(derive_seed(analysis["seed"], "reference", observation_name))
        num = analysis["diagnostics"]["c2st_num_samples"]
        samples = task.reference_posterior(torch.as_tensor(arrays["x_o"]), num)
        arrays["reference_samples"] = samples.numpy().astype(np.float32)
    save_arrays(output, arrays, provenance(analysis, analysis["seed"]))


def load_observation(path: str) -> dict[str, np.ndarray]:
    """Reads an observation file written by :func:`observe`."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
