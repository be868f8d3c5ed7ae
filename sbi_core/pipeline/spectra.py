"""Steps `ibu` (iterative Bayesian unfolding, the binned baseline) and `unfold_spectra` (binned results,
bands, closure numbers and plots of one method's unfolding).

Both bin each parameter the same way (:func:`~sbi_core.unfolding.spectra.spectrum_edges`),
so IBU's causes and the NEB spectra line up bin by bin.
"""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import torch

from sbi_core.io import atomic_path, load_simulations, provenance, read_json, write_json
from sbi_core.pipeline.common import read_posterior_samples
from sbi_core.pipeline.neb import load_population
from sbi_core.plots import plot_pair
from sbi_core.seeding import derive_seed
from sbi_core.tasks import build_task
from sbi_core.unfolding.ibu import iterative_unfold, response_from_simulations
from sbi_core.unfolding.plots import plot_regenerated_population, plot_unfolded_spectra
from sbi_core.unfolding.spectra import band_coverage, binned_spectra, chi2_per_bin, parameter_edges

__all__ = ["ibu", "unfold_spectra", "observable_components"]

def observable_components(settings: dict[str, Any], dim_theta: int, num_features: int) -> list[int]:
    """Which feature of x (flattened) IBU bins for each parameter: ``ibu.observables``, else
    feature ``j`` for parameter ``j`` (feature 0 when x has fewer features than parameters)."""
    chosen = settings.get("observables")
    if chosen is not None:
        return list(chosen)
    return [j if j < num_features else 0 for j in range(dim_theta)]


def ibu(
    task: dict[str, Any], name: str, bins: int, settings: dict[str, Any], seed: int,
    simulations: str, population_file: str, output: str,
) -> None:
    """Unfolds each parameter by IBU from a chosen feature of x, with a response built from the
    training simulations (and the task's efficiency); writes every iteration's result (.json).

    Arguments:
        task: The analysis's task keys.
        name: The analysis name.
        bins: ``unfolding.bins``: cause bins per parameter.
        settings: ``unfolding.ibu``: ``observables``, ``observable_bins``, ``prior``
            (``uniform`` or ``training``: the training simulations' cause spectrum), ``ts``,
            ``ts_stopping``, ``max_iter``, ``cov_type``.
        seed: The analysis seed (provenance only: IBU is deterministic).
        simulations: The training split (.npz).
        population_file: The population (.npz).
        output: The results (.json).
    """
    built = build_task(task, f"analyses.{name}")
    theta, x_train = load_simulations(simulations)
    x_train = x_train.reshape(len(x_train), -1)
    x_population = load_population(population_file)["x"].reshape(-1, x_train.shape[1])
    weights = None
    if built.efficiency is not None:
        weights = built.efficiency(torch.as_tensor(theta)).detach().numpy().astype(np.float64)
    results = {}
    for j, (parameter, edges, feature) in enumerate(zip(
        built.parameter_names, parameter_edges(built.prior, bins), observable_components(settings, built.dim_theta, x_train.shape[1])
    )):
        observable_edges = np.linspace(*np.quantile(x_train[:, feature], [0.001, 0.999]), settings["observable_bins"] + 1)
        response = response_from_simulations(theta[:, j], x_train[:, feature], edges, observable_edges, weights=weights)
        counts, _ = np.histogram(x_population[:, feature], bins=observable_edges)
        prior = None
        if settings["prior"] == "training":
            generated, _ = np.histogram(theta[:, j], bins=edges)
            prior = generated / generated.sum()
        result = iterative_unfold(
            counts.astype(np.float64), np.sqrt(counts), response.matrix, response.matrix_err,
            response.efficiencies, response.efficiencies_err, prior=prior, ts=settings["ts"],
            ts_stopping=settings["ts_stopping"], max_iter=settings["max_iter"], cov_type=settings["cov_type"],
            return_iterations=True,
        )
        results[parameter] = {
            "feature": feature,
            "edges": edges.tolist(),
            "observable_edges": observable_edges.tolist(),
            "observed_counts": counts.tolist(),
            "efficiencies": response.efficiencies.tolist(),
            "num_iterations": int(result.num_iterations),
            "unfolded": np.asarray(result.unfolded).tolist(),
            "stat_err": np.asarray(result.stat_err).tolist(),
            "sys_err": np.asarray(result.sys_err).tolist(),
            "iterations": [
                {"unfolded": np.asarray(step["unfolded"]).tolist(), "stat_err": np.asarray(step["stat_err"]).tolist(),
                 "sys_err": np.asarray(step["sys_err"]).tolist()}
                for step in result.iterations
            ],
        }
    write_json(output, {"analysis": name, "prior": settings["prior"], "parameters": results,
                        "provenance": provenance({"task": task, "bins": bins, "ibu": settings}, seed)})


def _density(unfolded: np.ndarray, stat_err: np.ndarray, sys_err: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IBU's counts as a density over the bins (its errors scaled alike, the normalisation's own error neglected)."""
    total = unfolded.sum() * np.diff(edges)
    return unfolded / total, np.hypot(stat_err, sys_err) / total


def unfold_spectra(
    task: dict[str, Any], name: str, method: str, bins: int, seed: int, samples: str, bootstrap: str,
    replicas: list[str], ibu_results: str | None, population_file: str, regenerated: str,
    table: str, numbers: str, spectra_plot: str, pair_plot: str, regenerated_plot: str,
) -> None:
    """Bins one method's unfolding with its bands beside the truth, the prior and IBU; writes the
    table (.csv), the closure numbers (.json) and three plots.

    Closure numbers (when the truth is known), per parameter: chi-square per bin of the
    NEB and of IBU (final and best iteration) against the truth, each with the error of a
    population of that size (the truth's multinomial error per bin, the same for both), and
    the fraction of bins whose bootstrap band, and whose band with the estimator spread
    added, holds the truth.
    """
    built = build_task(task, f"analyses.{name}")
    unfolded, names = read_posterior_samples(samples)
    with np.load(bootstrap) as data:
        refits = list(data["samples"])
    replica_samples = []
    for path in replicas:
        with np.load(path) as data:
            replica_samples.append(data["samples"])
    data = load_population(population_file)
    truth = data.get("truth_samples")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "spectra", "prior"))
        prior_samples = built.prior.sample((len(unfolded),)).numpy()
    edges = parameter_edges(built.prior, bins)
    ibu_densities, ibu_parameters = None, {}
    if ibu_results is not None:
        ibu_parameters = read_json(ibu_results)["parameters"]
        ibu_densities = {}
        for parameter, result in ibu_parameters.items():
            density, error = _density(*(np.asarray(result[k]) for k in ("unfolded", "stat_err", "sys_err")), np.asarray(result["edges"]))
            ibu_densities[parameter] = {"density": density, "density_err": error}
    rows = binned_spectra(names, edges, unfolded, refits, replica_samples, truth, prior_samples, ibu_densities)
    _write_rows(table, rows)

    closure = {}
    if truth is not None:
        size = len(data["x"])
        for parameter, bins_edges in zip(names, edges):
            closure[parameter] = _closure(parameter, rows, bins_edges, size, ibu_parameters.get(parameter))
    record = provenance({"task": task, "method": method, "bins": bins}, seed)
    write_json(numbers, {"analysis": name, "method": method, "closure": closure, "provenance": record})

    title = f"{name}: {method.upper()} unfolding"
    plot_unfolded_spectra(rows, spectra_plot, title=title)
    plot_pair(unfolded, names, pair_plot, reference=truth, title=f"{title} (orange: true source)" if truth is not None else title)
    with np.load(regenerated) as regen:
        regenerated_x = regen["x"]
    if len(regenerated_x):
        plot_regenerated_population(data["x"], regenerated_x, regenerated_plot, title=f"{title}: regenerated population")
    else:
        plot_regenerated_population(data["x"], data["x"][:0], regenerated_plot, title=f"{title}: no simulator to regenerate")


def _closure(parameter: str, rows: list[dict], edges: np.ndarray, size: int, ibu_result: dict | None) -> dict[str, Any]:
    own = [row for row in rows if row["parameter"] == parameter]
    column = {key: np.array([row[key] for row in own]) for key in own[0]}
    truth = column["truth"]
    widths = np.diff(edges)
    # The error a population of `size` events has in each bin, as a density: the same yardstick for NEB and IBU.
    probability = truth * widths
    common_err = np.sqrt(probability * (1 - probability) / size) / widths
    numbers: dict[str, Any] = {"num_bins": len(truth), "chi2_per_bin": chi2_per_bin(column["unfolded"], common_err, truth)}
    if "stat_low" in column:
        numbers["stat_band_coverage"] = band_coverage(column["stat_low"], column["stat_high"], truth)
        half = (column["stat_high"] - column["stat_low"]) / 2
        if "estimator_low" in column:
            half = np.hypot(half, (column["estimator_high"] - column["estimator_low"]) / 2)
        numbers["total_band_coverage"] = band_coverage(column["unfolded"] - half, column["unfolded"] + half, truth)
        numbers["band_level"] = 0.68
    if ibu_result is not None:
        per_iteration = []
        for step in ibu_result["iterations"]:
            density, _ = _density(np.asarray(step["unfolded"]), np.asarray(step["stat_err"]), np.asarray(step["sys_err"]), edges)
            per_iteration.append(chi2_per_bin(density, common_err, truth))
        numbers["ibu_chi2_per_bin"] = per_iteration[-1]
        numbers["ibu_best_chi2_per_bin"] = float(np.nanmin(per_iteration))
        numbers["ibu_best_iteration"] = int(np.nanargmin(per_iteration)) + 1
        numbers["ibu_num_iterations"] = ibu_result["num_iterations"]
    return numbers


def _write_rows(path: str, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()})
