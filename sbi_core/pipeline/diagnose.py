"""Step `diagnose`: calibration of one method on held-out simulations, and C2ST against references."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

from sbi_core.diagnostics import c2st, calibrate, tarp_uniform_references
from sbi_core.diagnostics.calibration import timed
from sbi_core.io import load_simulations, provenance, read_array, save_arrays, write_json
from sbi_core.pipeline.common import load_posterior, read_posterior_samples
from sbi_core.pipeline.observe import load_observation
from sbi_core.plots import plot_calibration_curve, plot_sbc_ranks
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import Task

__all__ = ["diagnose"]

LOG_DENSITY = "log density"


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
    theta, x = load_simulations(test_simulations)
    if len(theta) < num_simulations:  # invalid simulations were dropped from the test split
        print(
            f"{test_simulations}: {len(theta)} valid test simulations, fewer than diagnostics.num_simulations "
            f"= {num_simulations}; calibrating on {len(theta)}",
            file=sys.stderr,
        )
        num_simulations = len(theta)
    theta, x = torch.as_tensor(theta[:num_simulations]), torch.as_tensor(x[:num_simulations])

    references = _tarp_references(settings["tarp"]["references"], theta.numpy(), task, analysis["seed"])
    seed_everything(derive_seed(analysis["seed"], "diagnose", method))
    result = calibrate(
        theta,
        x,
        posterior.sample,
        posterior.log_density,
        num_samples,
        references,
        num_levels=settings["coverage_num_levels"],
        confidence=settings["confidence"],
        tarp_num_bins=settings["tarp"].get("num_bins"),
        tarp_num_bootstrap=settings["tarp"]["num_bootstrap"],
        seed=derive_seed(analysis["seed"], "tarp", method),
    )
    coverage, seconds = result.coverage, result.seconds
    tarp_result = {**result.tarp, "references": settings["tarp"]["references"]}
    with timed(seconds, "c2st"):
        c2st_results = _c2st_per_observation(analysis, method, task, observations, posteriors)

    record = provenance(analysis, analysis["seed"])
    save_arrays(
        ranks,
        {
            "ranks": result.parameter_ranks,
            "log_density_ranks": result.log_density_ranks,
            "hpd_credibility": result.hpd_credibility,
            "num_samples": num_samples,
        },
        record,
    )
    title = f"{name}: {method.upper()}, {num_simulations} test simulations x {num_samples} samples"
    plot_sbc_ranks(
        np.concatenate([result.parameter_ranks, result.log_density_ranks[:, None]], axis=1),
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
            "sbc": result.sbc,
            "coverage": coverage,
            "tarp": tarp_result,
            "c2st": c2st_results,
            "verdicts": {"coverage": coverage["verdict"], "tarp": tarp_result["verdict"]},
            "seconds": {**seconds, "total": sum(seconds.values())},
            "provenance": record,
        },
    )


def _tarp_references(setting: str, theta: np.ndarray, task: Task, seed: int) -> np.ndarray:
    """TARP's reference points by the config's ``diagnostics.tarp.references``."""
    if setting == "uniform":
        return tarp_uniform_references(theta, np.random.default_rng(derive_seed(seed, "tarp_references")))
    if setting == "prior":
        seed_everything(derive_seed(seed, "tarp_references"))
        return task.prior.sample((len(theta),)).numpy()
    return read_array(setting)[: len(theta)]


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
