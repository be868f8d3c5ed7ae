"""Steps `population`, `unfold`, `unfold_replica` and `eb_posteriors`: neural empirical Bayes in the workflow.

`population` writes the observed population (a user's file, or a closure test
simulated from a known source); `unfold` fits the source with one estimator, refits
it on bootstrap resamples of the population, and checks the fit by regenerating the
population; `unfold_replica` repeats the fit with an estimator trained on a
bootstrap resample of the training simulations (the estimator's own spread);
`eb_posteriors` samples per-observation posteriors under the fitted source.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from typing import Any

import numpy as np
import torch

from sbi_core.diagnostics.c2st import c2st
from sbi_core.estimators import load_estimator, require_device, train_estimator
from sbi_core.io import (
    atomic_path,
    load_simulations,
    provenance,
    read_array,
    save_arrays,
    write_inference_data,
    write_json,
)
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import Task, build_task
from sbi_core.unfolding.fit import FitSettings, fit_source
from sbi_core.unfolding.population import simulate_population
from sbi_core.unfolding.posteriors import empirical_bayes_posterior
from sbi_core.unfolding.regenerate import neb_roc_auc, population_checks
from sbi_core.unfolding.source import SourceFlow, load_source
from sbi_core.unfolding.sources import source_from_config

__all__ = ["population", "unfold", "unfold_replica", "eb_posteriors", "load_population"]


def population(
    task: dict[str, Any], name: str, spec: dict[str, Any], num_truth_samples: int, seed: int,
    file: str | None, output: str,
) -> None:
    """Writes the population ``x [n, ...]`` to an .npz file, with the truth of a closure test.

    Arguments:
        task: The analysis's task keys.
        name: The analysis name.
        spec: ``unfolding.population``: ``file``, or ``source`` and ``size``.
        num_truth_samples: Fresh draws of a known source saved beside it (``truth_samples``,
            the reference of the unfolded samples; the recorded events' own parameters,
            ``theta``, are thinned by the detector's efficiency).
        seed: The analysis seed.
        file: The user's population file (``spec.file``), or None.
        output: The .npz file.
    """
    where = f"analyses.{name}.unfolding.population"
    built = build_task(task, f"analyses.{name}")
    record = provenance({"task": task, "population": spec}, seed)
    if file is not None:
        save_arrays(output, {"x": read_array(file)}, record)
        return
    source = source_from_config(spec["source"], built.prior, f"{where}.source")
    theta, x, dropped = simulate_population(built, source, spec["size"], derive_seed(seed, "population"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "population", "truth"))
        truth = source.sample((num_truth_samples,)).float().numpy()
    save_arrays(output, {"x": x, "theta": theta, "truth_samples": truth, "dropped": np.array(dropped)}, record)


def load_population(path: str) -> dict[str, np.ndarray]:
    """Reads what :func:`population` wrote."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files if key != "provenance"}


def unfold(
    task: dict[str, Any], name: str, method: str, settings: dict[str, Any], seed: int, device: str,
    estimator: str, population_file: str, source: str, history: str, samples: str, bootstrap: str,
    regenerated: str, metrics: str,
) -> None:
    """Fits the source with one estimator, refits it on bootstrap resamples, checks it; writes six files.

    Arguments:
        task: The analysis's task keys.
        name: The analysis name.
        method: The estimator's method.
        settings: The ``unfolding`` keys the fit reads: ``source_flow``, ``fit``,
            ``num_bootstrap``, ``bootstrap_steps``, ``bootstrap_start``, ``num_samples``, ``c2st_num_samples``,
            ``neb_protocol_auc``.
        seed: The analysis seed.
        device: Where the fit runs.
        estimator: The trained estimator (.pt).
        population_file: The population (.npz).
        source, history, samples, bootstrap, regenerated, metrics: The outputs: the fitted
            source (.pt), its loss per epoch (.csv), unfolded samples (.nc), the bootstrap
            refits' samples (.npz), the regenerated population (.npz), the numbers (.json).
    """
    built = build_task(task, f"analyses.{name}")
    model = load_estimator(estimator, prior=built.prior, device=require_device(device, f"analyses.{name}.device"))
    data = load_population(population_file)
    x = _population_x(population_file, model.x_shape)
    fit = FitSettings.from_config(settings["fit"])
    seed_everything(derive_seed(seed, "unfold", method))

    start = time.perf_counter()
    fitted = SourceFlow.for_prior(built.prior, **settings["source_flow"])
    losses = fit_source(model, x, fitted, fit, built.efficiency, seed=derive_seed(seed, "unfold", method, "fit"))
    fit_seconds = time.perf_counter() - start
    unfolded = _draw(fitted, settings["num_samples"], derive_seed(seed, "unfold", method, "samples"))

    refits = _bootstrap(model, x, fitted, fit, settings, built, derive_seed(seed, "unfold", method, "bootstrap"))
    record = provenance({"task": task, "method": method, "unfolding": settings, "device": device}, seed)
    fitted.save(source, record)
    _write_history(history, losses)
    _write_samples(samples, unfolded, built, name, method, record)
    save_arrays(bootstrap, {"samples": refits}, record)

    numbers: dict[str, Any] = {
        "analysis": name,
        "method": method,
        "population_size": len(x),
        "fit": fit.to_dict(),
        "fit_seconds": fit_seconds,
        "log_marginal_likelihood": -losses[-1],
        "parameters": _moments(built.parameter_names, unfolded, refits),
    }
    if "truth_samples" in data:
        truth = data["truth_samples"]
        test = c2st(truth, unfolded, seed=derive_seed(seed, "unfold", method, "c2st"), max_samples=settings["c2st_num_samples"])
        numbers["c2st_truth"] = {"accuracy": test.accuracy, "stderr": test.stderr, "roc_auc": test.roc_auc,
                                 "num_samples": test.num_samples_b}
    regenerated_x = _regenerate(built, fitted, len(x), derive_seed(seed, "unfold", method, "regenerate"))
    if regenerated_x is None:
        numbers["regenerated"] = None
        numbers["regenerated_skipped"] = "the task has no simulator"
        save_arrays(regenerated, {"x": np.zeros((0, *x.shape[1:]), dtype=np.float32)}, record)
    else:
        save_arrays(regenerated, {"x": regenerated_x}, record)
        numbers["regenerated"] = population_checks(
            data["x"], regenerated_x, settings["c2st_num_samples"], derive_seed(seed, "unfold", method, "regenerated")
        )
        if settings.get("neb_protocol_auc"):
            numbers["regenerated"]["neb_protocol_roc_auc"] = neb_roc_auc(data["x"], regenerated_x, seed=0)
    numbers["provenance"] = record
    write_json(metrics, numbers)


def unfold_replica(
    task: dict[str, Any], name: str, method: str, replica: int, training: dict[str, Any],
    settings: dict[str, Any], seed: int, device: str, simulations: str, population_file: str, output: str,
) -> None:
    """Trains the method on a bootstrap resample of the training simulations and fits the source with it.

    The spread of the unfolded source over replicas is the estimator's share of the
    uncertainty, reported apart from the population's (bootstrap) share.

    Arguments:
        replica: Its index; it seeds the resample, the training and the fit.
        training: The ``training`` keys the method reads.
        settings: As for :func:`unfold`.
        simulations: The training split (.npz).
        output: The replica's unfolded samples (.npz, ``samples [S, d]``).
    """
    built = build_task(task, f"analyses.{name}")
    device = require_device(device, f"analyses.{name}.device")
    theta, x_train = load_simulations(simulations)
    rng = np.random.default_rng(derive_seed(seed, "replica", method, replica))
    resample = rng.integers(len(theta), size=len(theta))
    seed_everything(derive_seed(seed, "replica", method, replica, "train"))
    trained, _ = train_estimator(method, torch.as_tensor(theta[resample]), torch.as_tensor(x_train[resample]),
                                 built.prior, training, device=device)
    x = _population_x(population_file, trained.x_shape)
    fitted = SourceFlow.for_prior(built.prior, **settings["source_flow"])
    fit_source(trained, x, fitted, FitSettings.from_config(settings["fit"]), built.efficiency,
               seed=derive_seed(seed, "replica", method, replica, "fit"))
    unfolded = _draw(fitted, settings["num_samples"], derive_seed(seed, "replica", method, replica, "samples"))
    settings_record = {"task": task, "method": method, "replica": replica, "training": training, "unfolding": settings}
    save_arrays(output, {"samples": unfolded}, provenance(settings_record, seed))


def eb_posteriors(
    task: dict[str, Any], name: str, method: str, count: int, num_samples: int, seed: int, device: str,
    estimator: str, source: str, population_file: str, output: str,
) -> None:
    """Samples the empirical-Bayes posterior of the population's first ``count`` observations (.nc),
    by SIR from the fitted source's proposals.

    Arguments:
        count: How many observations (``unfolding.posteriors``).
        num_samples: Samples per observation (``sampling.num_samples``).
    """
    built = build_task(task, f"analyses.{name}")
    dev = require_device(device, f"analyses.{name}.device")
    model = load_estimator(estimator, prior=built.prior, device=dev)
    x = _population_x(population_file, model.x_shape)[:count]
    draws = empirical_bayes_posterior(model, load_source(source), x, num_samples,
                                      seed=derive_seed(seed, "eb_posteriors", method)).cpu().numpy()
    record = provenance({"task": task, "method": method, "count": count, "num_samples": num_samples}, seed)
    write_inference_data(
        output,
        posterior={p: draws[None, :, :, i].transpose(0, 2, 1) for i, p in enumerate(built.parameter_names)},
        observed_data={"x": x.numpy()},
        attrs={"analysis": name, "method": method, "prior": "fitted source (empirical Bayes)",
               "provenance": json.dumps(record)},
        dims={p: ["observation"] for p in built.parameter_names},
    )


def _population_x(path: str, x_shape: tuple[int, ...]) -> torch.Tensor:
    """The population as ``[n, *x_shape]`` (a user's file may hold each x flattened)."""
    x = load_population(path)["x"]
    return torch.as_tensor(x.reshape(len(x), *x_shape))


@torch.no_grad()
def _draw(source: SourceFlow, num_samples: int, seed: int) -> np.ndarray:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return copy.deepcopy(source).cpu()().sample((num_samples,)).float().numpy()


def _bootstrap(
    model: Any, x: torch.Tensor, fitted: SourceFlow, fit: FitSettings, settings: dict[str, Any], built: Task, seed: int
) -> np.ndarray:
    """Refits on ``num_bootstrap`` resamples of the population; returns their samples ``[B, S, d]``.

    ``bootstrap_start: warm`` starts each refit from the fit for ``bootstrap_steps`` steps;
    ``cold`` starts each from the prior, as the fit did, for ``fit.steps`` steps, so that the
    band holds the optimisation's own scatter too."""
    rng = np.random.default_rng(seed)
    cold = settings["bootstrap_start"] == "cold"
    refit_settings = fit if cold else FitSettings(**{**fit.to_dict(), "steps": settings["bootstrap_steps"]})
    refits = []
    for b in range(settings["num_bootstrap"]):
        resample = torch.as_tensor(rng.integers(len(x), size=len(x)))
        if cold:
            torch.manual_seed(derive_seed(seed, b, "initial"))
            refit = SourceFlow.for_prior(built.prior, **settings["source_flow"])
        else:
            refit = copy.deepcopy(fitted)
        fit_source(model, x[resample], refit, refit_settings, built.efficiency, seed=derive_seed(seed, b), progress=False)
        refits.append(_draw(refit, settings["num_samples"], derive_seed(seed, b, "samples")))
    if not refits:
        return np.zeros((0, settings["num_samples"], built.dim_theta), dtype=np.float32)
    return np.stack(refits)


def _regenerate(built: Task, fitted: SourceFlow, size: int, seed: int) -> np.ndarray | None:
    """A population of the same size simulated from the fitted source (None without a simulator)."""
    if built.simulator is None:
        return None
    on_cpu = copy.deepcopy(fitted).cpu()
    with torch.no_grad():
        _, x, _ = simulate_population(built, on_cpu(), size, seed, progress=False)
    return x


def _moments(names: tuple[str, ...], unfolded: np.ndarray, refits: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean, standard deviation and root mean square per parameter, with the bootstrap's spread as
    their errors.

    The root mean square is what the data still fix where the simulator cannot see a parameter's
    sign (slcp's theta_3 and theta_4): the mass a fit puts on either side, and with it the mean and
    the standard deviation, is then arbitrary and moves between reruns.
    """
    moments = {}
    for i, name in enumerate(names):
        values = unfolded[:, i]
        entry = {"mean": float(values.mean()), "std": float(values.std(ddof=1)),
                 "rms": float(np.sqrt(np.mean(values**2)))}
        if len(refits) > 1:
            entry["mean_err"] = float(refits[:, :, i].mean(1).std(ddof=1))
            entry["std_err"] = float(refits[:, :, i].std(1, ddof=1).std(ddof=1))
            entry["rms_err"] = float(np.sqrt(np.mean(refits[:, :, i] ** 2, axis=1)).std(ddof=1))
        moments[name] = entry
    return moments


def _write_samples(path: str, unfolded: np.ndarray, built: Task, name: str, method: str, record: dict) -> None:
    write_inference_data(
        path,
        posterior={p: unfolded[None, :, i] for i, p in enumerate(built.parameter_names)},
        attrs={"analysis": name, "method": method, "content": "unfolded source samples", "provenance": json.dumps(record)},
    )


def _write_history(path: str, losses: list[float]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "negative_log_marginal_likelihood"])
        for epoch, loss in enumerate(losses, start=1):
            writer.writerow([epoch, f"{loss:.6g}"])
