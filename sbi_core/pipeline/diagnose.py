"""Step `diagnose`: SBC on held-out simulations and C2ST against reference posteriors, per method."""

from __future__ import annotations

import math
import time
from pathlib import Path

import arviz as az
import numpy as np
import torch

from sbi_core.diagnostics import c2st, sbc_ranks, sbc_uniformity
from sbi_core.io import atomic_path, load_simulations, provenance, write_json
from sbi_core.pipeline.common import load_sampler
from sbi_core.pipeline.observe import load_observation
from sbi_core.plots import plot_pair, plot_sbc_ranks
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import build_task

__all__ = ["diagnose", "plot_posterior", "read_posterior_samples"]


def diagnose(
    analysis: dict,
    name: str,
    method: str,
    estimator: str,
    test_simulations: str,
    observations: list[str],
    posteriors: list[str],
    calibration: str,
    ranks: str,
    rank_plot: str,
) -> None:
    """Writes calibration.json, the SBC ranks and their histogram.

    `observations` and `posteriors` are parallel lists, one entry per observation.
    """
    settings = analysis["diagnostics"]
    task, sampler = load_sampler(analysis, name, estimator)

    start = time.perf_counter()
    theta, x = load_simulations(test_simulations)
    theta, x = theta[: settings["sbc_num_simulations"]], x[: settings["sbc_num_simulations"]]
    seed_everything(derive_seed(analysis["seed"], "diagnose", method))
    samples = sampler(torch.as_tensor(x), settings["sbc_num_samples"])
    rank_matrix = sbc_ranks(theta, samples.numpy())
    sbc = {
        "num_simulations": len(theta),
        "num_samples": settings["sbc_num_samples"],
        **sbc_uniformity(rank_matrix, settings["sbc_num_samples"]),
        "seconds": time.perf_counter() - start,
    }
    with atomic_path(ranks) as tmp, open(tmp, "wb") as f:
        np.savez(f, ranks=rank_matrix, num_samples=settings["sbc_num_samples"])
    plot_sbc_ranks(rank_matrix, settings["sbc_num_samples"], task.parameter_names, rank_plot)

    c2st_results = {}
    for observation_file, posterior_file in zip(observations, posteriors, strict=True):
        observation_name = Path(posterior_file).stem
        observation = load_observation(observation_file)
        estimate = read_posterior_samples(posterior_file, task.parameter_names)
        reference = observation.get("reference_samples")
        if reference is not None:
            num = min(len(reference), len(estimate), settings["c2st_num_samples"])
            accuracy = c2st(estimate[:num], reference[:num], seed=derive_seed(analysis["seed"], "c2st", method))
            c2st_results[observation_name] = {
                "accuracy": accuracy,
                "stderr": math.sqrt(accuracy * (1 - accuracy) / (2 * num)),
                "num_samples": num,
            }
    write_json(
        calibration,
        {
            "analysis": name,
            "method": method,
            "sbc": sbc,
            "c2st": c2st_results,
            "seconds": time.perf_counter() - start,
            "provenance": provenance(analysis, analysis["seed"]),
        },
    )


def read_posterior_samples(path: str, parameter_names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Reads posterior samples [n, d] (chains stacked) from an InferenceData netCDF file."""
    posterior = az.from_netcdf(path).posterior
    return np.stack([posterior[p].values.reshape(-1) for p in parameter_names], axis=-1)


def plot_posterior(analysis: dict, name: str, method: str, observation: str, posterior: str, output: str) -> None:
    """Pair plot of one posterior, over its reference samples and true parameters where known."""
    task = build_task(analysis, f"analyses.{name}")
    data = load_observation(observation)
    observation_name = Path(posterior).stem
    plot_pair(
        read_posterior_samples(posterior, task.parameter_names),
        task.parameter_names,
        output,
        reference=data.get("reference_samples"),
        truth=data.get("theta_true"),
        title=f"{name}: {method.upper()}, {observation_name}",
    )
