"""Step `diagnose`: calibration of one method on held-out simulations (SBC, HPD coverage, TARP)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch

from sbi_core.diagnostics import calibrate, tarp_uniform_references
from sbi_core.io import load_simulations, provenance, read_array, save_arrays, write_json
from sbi_core.pipeline.common import load_posterior
from sbi_core.plots import plot_calibration_curve, plot_sbc_ranks
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import Task

__all__ = ["diagnose"]

LOG_DENSITY = "log density"


def diagnose(
    task: dict[str, Any],
    name: str,
    method: str,
    sampling: dict[str, Any],
    seed: int,
    device: str,
    num_simulations: int,
    num_samples: int,
    confidence: float,
    coverage_num_levels: int,
    tarp: dict[str, Any],
    estimator: str,
    test_simulations: str,
    calibration: str,
    ranks: str,
    rank_plot: str,
    coverage_plot: str,
    tarp_plot: str,
) -> None:
    """Writes calibration.json (SBC, coverage, TARP, verdicts, seconds), the ranks and three plots.

    Arguments:
        task: The analysis's task keys (:func:`~sbi_core.schema.task_settings`).
        sampling: The ``sampling`` keys the method reads.
        num_simulations, num_samples, confidence, coverage_num_levels, tarp: The
            ``diagnostics`` keys of the same names.
    """
    built, posterior = load_posterior(task, name, estimator, sampling, device)
    theta, x = load_simulations(test_simulations)
    if len(theta) < num_simulations:  # invalid simulations were dropped from the test split
        print(
            f"{test_simulations}: {len(theta)} valid test simulations, fewer than diagnostics.num_simulations "
            f"= {num_simulations}; calibrating on {len(theta)}",
            file=sys.stderr,
        )
        num_simulations = len(theta)
    theta, x = torch.as_tensor(theta[:num_simulations]), torch.as_tensor(x[:num_simulations])

    references = _tarp_references(tarp["references"], theta.numpy(), built, seed)
    seed_everything(derive_seed(seed, "diagnose", method))
    result = calibrate(
        theta,
        x,
        posterior.sample,
        posterior.log_density,
        num_samples,
        references,
        num_levels=coverage_num_levels,
        confidence=confidence,
        tarp_num_bins=tarp.get("num_bins"),
        tarp_num_bootstrap=tarp["num_bootstrap"],
        seed=derive_seed(seed, "tarp", method),
    )
    coverage, seconds = result.coverage, result.seconds
    tarp_result = {**result.tarp, "references": tarp["references"]}

    settings = {
        "task": task, "method": method, "sampling": sampling, "device": device, "num_simulations": num_simulations,
        "num_samples": num_samples, "confidence": confidence, "coverage_num_levels": coverage_num_levels,
        "tarp": tarp,
    }
    record = provenance(settings, seed)
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
        [*built.parameter_names, LOG_DENSITY],
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
