"""What several steps share: the task and the posterior of a saved estimator, and posterior files."""

from __future__ import annotations

from typing import Any

import numpy as np

from sbi_core.errors import ArtifactError
from sbi_core.estimators import PosteriorEstimate, load_estimator, require_device
from sbi_core.tasks import Task, build_task

__all__ = ["load_posterior", "read_posterior_samples"]


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
    built = build_task(task, f"analyses.{name}")
    device = require_device(device, f"analyses.{name}.device")
    trained = load_estimator(estimator, prior=built.prior, device=device)
    return built, trained.posterior(sampling)


def read_posterior_samples(path: str) -> tuple[np.ndarray, list[str]]:
    """Reads posterior samples ``[n, d]`` (chains stacked) and the parameter names from an
    InferenceData netCDF file; an ArtifactError naming the file if it is not one."""
    import arviz as az  # here, not at import: most steps never read samples (arviz, xarray: seconds per job)

    try:
        posterior = az.from_netcdf(path).posterior
    except (OSError, ValueError, AttributeError) as error:
        raise ArtifactError(
            f"{path}: not an ArviZ InferenceData netCDF file with a posterior group (as the sample step "
            f"writes): {error}; delete it and rerun"
        ) from error
    names = [str(name) for name in posterior.data_vars]
    return np.stack([posterior[p].values.reshape(-1) for p in names], axis=-1), names
