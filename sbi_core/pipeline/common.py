"""What several steps share: the task and the posterior of a saved estimator, and the files of
observations, reference samples and posterior samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sbi_core.errors import ArtifactError

if TYPE_CHECKING:  # loaded by load_posterior: the steps that only read files (C2ST, plots) do not load torch
    from sbi_core.estimators import PosteriorEstimate
    from sbi_core.tasks import Task

__all__ = ["load_posterior", "read_posterior_samples", "load_observation", "load_reference_samples"]


def load_posterior(
    task: dict[str, Any], name: str, estimator: str, sampling: dict[str, Any], device: str
) -> tuple[Task, PosteriorEstimate]:
    """The analysis's task and the batched posterior (sampler and log-density) of the estimator file.

    Arguments:
        task: The analysis's task keys (:func:`~sbi_core.schema.task_settings`).
        name: The analysis name, for messages.
        estimator: The estimator file.
        sampling: The ``sampling`` keys the method reads.
        device: ``analyses.<name>.device``; the posterior runs there.
    """
    from sbi_core.estimators import load_estimator, require_device
    from sbi_core.tasks import build_task

    built = build_task(task, f"analyses.{name}")
    device = require_device(device, f"analyses.{name}.device")
    trained = load_estimator(estimator, prior=built.prior, device=device)
    return built, trained.posterior(sampling)


def read_posterior_samples(path: str) -> tuple[np.ndarray, list[str]]:
    """Reads posterior samples ``[n, d]`` (chains stacked) and the parameter names from an
    InferenceData netCDF file; an ArtifactError naming the file if it is not one.

    The posterior group is read with h5netcdf, through which ArviZ writes it: importing ArviZ
    (its plots and statistics) or even xarray costs seconds, a good part of a C2ST or
    pair-plot job.
    """
    import h5netcdf  # here, not at import: most steps never read samples

    try:
        with h5netcdf.File(path, "r") as file:
            posterior = file.groups["posterior"]
            names = [str(name) for name in posterior.variables if name not in posterior.dimensions]
            samples = [np.asarray(posterior.variables[name][...]).reshape(-1) for name in names]
    except (OSError, KeyError, ValueError) as error:
        raise ArtifactError(
            f"{path}: not an ArviZ InferenceData netCDF file with a posterior group (as the sample step "
            f"writes): {error!r}; delete it and rerun"
        ) from error
    if not names:
        raise ArtifactError(f"{path}: its posterior group holds no parameters; delete it and rerun")
    return np.stack(samples, axis=-1), names


def load_observation(path: str) -> dict[str, np.ndarray]:
    """Reads an observation file written by :func:`~sbi_core.pipeline.observe.observe`."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def load_reference_samples(path: str) -> np.ndarray | None:
    """Reads the samples written by :func:`~sbi_core.pipeline.observe.reference_posterior`; None where there
    are none."""
    samples = load_observation(path)["reference_samples"]
    return samples if len(samples) else None
