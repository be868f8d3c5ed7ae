"""Step `diagnose`: calibration of one method on held-out simulations, and C2ST against references.

One batched sampling pass draws ``S`` posterior samples for each of ``N`` test
simulations; SBC (per parameter and of the log-density), expected HPD coverage
and TARP all read those samples, each timed separately.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from sbi_core.diagnostics import (
    c2st,
    coverage_verdict,
    hpd_credibility,
    sbc_ranks,
    sbc_uniformity,
    tarp,
    tarp_uniform_references,
)
from sbi_core.io import atomic_path, load_simulations, provenance, read_array, write_json
from sbi_core.pipeline.common import load_posterior, read_posterior_samples
from sbi_core.pipeline.observe import load_observation
from sbi_core.plots import plot_calibration_curve, plot_sbc_ranks
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import Task

__all__ = ["diagnose"]

LOG_DENSITY = "log density"


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start


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
    coverage_plot: str,
    tarp_plot: str,
) -> None:
    """Writes calibration.json (SBC, coverage, TARP, C2ST, verdicts, seconds), the ranks and three plots.

    `observations` and `posteriors` are parallel lists, one entry per observation.
    """
    settings = analysis["diagnostics"]
    num_simulations, num_samples = settings["num_simulations"], settings["num_samples"]
    task, posterior = load_posterior(analysis, name, estimator)
    seconds: dict[str, float] = {}
    theta, x = load_simulations(test_simulations)
    if len(theta) < num_simulations:  # invalid simulations were dropped from the test split
        print(
            f"{test_simulations}: {len(theta)} valid test simulations, fewer than diagnostics.num_simulations "
            f"= {num_simulations}; calibrating on {len(theta)}",
            file=sys.stderr,
        )
        num_simulations = len(theta)
    theta, x = torch.as_tensor(theta[:num_simulations]), torch.as_tensor(x[:num_simulations])

    seed_everything(derive_seed(analysis["seed"], "diagnose", method))
    with _timed(seconds, "sampling"):
        samples = posterior.sample(x, num_samples)
    with _timed(seconds, "log_density"):
        log_density_samples = posterior.log_density(samples, x).numpy()
        log_density_true = posterior.log_density(theta[:, None, :], x)[:, 0].numpy()
    theta, samples = theta.numpy(), samples.numpy()

    with _timed(seconds, "sbc"):
        parameter_ranks = sbc_ranks(theta, samples)
        density_ranks = sbc_ranks(log_density_true[:, None], log_density_samples[..., None])
        sbc = {
            "parameters": sbc_uniformity(parameter_ranks, num_samples),
            "log_density": sbc_uniformity(density_ranks, num_samples),
        }
    with _timed(seconds, "coverage"):
        credibility = hpd_credibility(log_density_true, log_density_samples)
        coverage = coverage_verdict(credibility, settings["coverage_num_levels"], settings["confidence"])
    with _timed(seconds, "tarp"):
        references = _tarp_references(settings["tarp"]["references"], theta, task, analysis["seed"])
        tarp_result = tarp(
            theta,
            samples,
            references,
            num_bins=settings["tarp"].get("num_bins"),
            num_bootstrap=settings["tarp"]["num_bootstrap"],
            confidence=settings["confidence"],
            seed=derive_seed(analysis["seed"], "tarp", method),
        )
        tarp_result["references"] = settings["tarp"]["references"]
    with _timed(seconds, "c2st"):
        c2st_results = _c2st_per_observation(analysis, method, task, observations, posteriors)

    with atomic_path(ranks) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            ranks=parameter_ranks,
            log_density_ranks=density_ranks[:, 0],
            hpd_credibility=credibility,
            num_samples=num_samples,
        )
    title = f"{name}: {method.upper()}, {num_simulations} test simulations x {num_samples} samples"
    plot_sbc_ranks(
        np.concatenate([parameter_ranks, density_ranks], axis=1),
        num_samples,
        [*task.parameter_names, LOG_DENSITY],
        rank_plot,
    )
    plot_calibration_curve(
        coverage["levels"], coverage["coverage"], coverage["band_low"], coverage["band_high"], coverage_plot,
        xlabel="credibility level of the HPD region", ylabel="expected coverage",
        band_label=f"{coverage['confidence']:.0%} binomial band (all levels jointly)",
        title=f"{title}\nexpected HPD coverage: {coverage['verdict']}",
    )
    plot_calibration_curve(
        tarp_result["alpha"], tarp_result["ecp"], tarp_result["band_low"], tarp_result["band_high"], tarp_plot,
        xlabel="credibility level", ylabel="expected coverage probability (TARP)",
        band_label=f"{tarp_result['confidence']:.0%} bootstrap band",
        title=f"{title}\nTARP: ATC {tarp_result['atc']:+.3f} ± {tarp_result['atc_stderr']:.3f}, "
        f"KS p {tarp_result['ks_pvalue']:.2g}: {tarp_result['verdict']}",
    )
    write_json(
        calibration,
        {
            "analysis": name,
            "method": method,
            "num_simulations": num_simulations,
            "num_samples": num_samples,
            "sbc": sbc,
            "coverage": coverage,
            "tarp": tarp_result,
            "c2st": c2st_results,
            "verdicts": {"coverage": coverage["verdict"], "tarp": tarp_result["verdict"]},
            "seconds": {**seconds, "total": sum(seconds.values())},
            "provenance": provenance(analysis, analysis["seed"]),
        },
    )


def _tarp_references(setting: str, theta: np.ndarray, task: Task, seed: int) -> np.ndarray:
    """TARP's reference points by the config's ``diagnostics.tarp.references``."""
    if setting == "uniform":
        return tarp_uniform_references(theta, np.random.default_rng(derive_seed(seed, "tarp_references")))
    if setting == "prior":
        seed_everything(derive_seed(seed, "tarp_references"))
        return task.prior.sample((len(theta),)).numpy()
    return read_array(setting)


def _c2st_per_observation(
    analysis: dict, method: str, task: Task, observations: list[str], posteriors: list[str]
) -> dict[str, dict]:
    """C2ST of each observation's posterior samples against its reference samples, where they exist."""
    results = {}
    for observation_file, posterior_file in zip(observations, posteriors, strict=True):
        reference = load_observation(observation_file).get("reference_samples")
        if reference is None:
            continue
        estimate = read_posterior_samples(posterior_file, task.parameter_names)
        num = min(len(reference), len(estimate), analysis["diagnostics"]["c2st_num_samples"])
        accuracy = c2st(estimate[:num], reference[:num], seed=derive_seed(analysis["seed"], "c2st", method))
        results[Path(posterior_file).stem] = {
            "accuracy": accuracy,
            "stderr": math.sqrt(accuracy * (1 - accuracy) / (2 * num)),
            "num_samples": num,
        }
    return results
