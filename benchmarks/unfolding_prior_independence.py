"""Prior independence: one population unfolded with estimators trained under two different simulation
priors (NEB), beside IBU started from two different priors.

The gaussian_smearing task (x = theta + N(0.5, 1)) and its closure source N(1, 1.5^2) in
[-5, 5]. Estimators (NRE, our ratio core, 10^4 simulations) are trained under
A: U(-5, 5) (the task's prior) and B: N(2, 3^2) restricted to the same box by rejection
(a differently shaped simulation prior); the same 10,000 observations are unfolded with
each, with a 68% band from refits on bootstrap resamples. NEB is prior-independent when the
two agree within their bands. IBU (20 causes, 30 observable bins) uses the response of
the A simulations and starts from a uniform prior or from B's shape; its result depends on
that start at the iteration where it stops.

Run: ``.venv/bin/python benchmarks/unfolding_prior_independence.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sbi.utils import BoxUniform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import environment  # noqa: E402

from sbi_core.estimators import train_estimator  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402
from sbi_core.unfolding import FitSettings, SourceFlow, fit_source  # noqa: E402
from sbi_core.unfolding.ibu import iterative_unfold, response_from_simulations  # noqa: E402
from sbi_core.unfolding.sources import BUILTIN_SOURCES  # noqa: E402
from sbi_core.unfolding.spectra import BAND_QUANTILES, binned_density  # noqa: E402

EDGES = np.linspace(-5, 5, 21)
OBSERVABLE_EDGES = np.linspace(-6.5, 7.5, 31)
TRAINING = {"hidden_features": 64, "num_blocks": 2, "num_atoms": 10, "batch_size": 200, "learning_rate": 1e-3,
            "max_epochs": 100, "patience": 10, "validation_fraction": 0.1}


def _gaussian_in_box(num: int, generator: torch.Generator) -> torch.Tensor:
    draws = 2.0 + 3.0 * torch.randn(4 * num, 1, generator=generator)
    return draws[(draws.abs() <= 5).all(1)][:num]


def _unfold(estimator, prior, x, fit: FitSettings, bootstrap: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    source = SourceFlow.for_prior(prior, transforms=3, hidden_features=[64, 64])
    fit_source(estimator, x, source, fit, seed=seed, progress=False)
    with torch.no_grad():
        central = binned_density(source().sample((50_000,))[:, 0].numpy(), EDGES)
    rng = np.random.default_rng(seed)
    refits = []
    for b in range(bootstrap):
        refit = SourceFlow.for_prior(prior, transforms=3, hidden_features=[64, 64])
        refit.load_state_dict(source.state_dict())
        resample = torch.as_tensor(rng.integers(len(x), size=len(x)))
        fit_source(estimator, x[resample], refit, dataclasses.replace(fit, steps=150), seed=seed + b + 1, progress=False)
        with torch.no_grad():
            refits.append(binned_density(refit().sample((50_000,))[:, 0].numpy(), EDGES))
    low, high = np.quantile(np.stack(refits), BAND_QUANTILES, axis=0)
    return central, low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=10_000)
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--bootstrap", type=int, default=10)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()

    task = BUILTIN_TASKS["gaussian_smearing"]()
    box = BoxUniform(torch.tensor([-5.0]), torch.tensor([5.0]))
    generator = torch.Generator().manual_seed(0)
    thetas = {"A: U(-5, 5)": box.sample((args.simulations,)), "B: N(2, 3^2) in the box": _gaussian_in_box(args.simulations, generator)}
    torch.manual_seed(1)
    population_theta = BUILTIN_SOURCES["gaussian_smearing"]().sample((args.population,))
    x = task.simulate(population_theta)
    truth = binned_density(BUILTIN_SOURCES["gaussian_smearing"]().sample((200_000,))[:, 0].numpy(), EDGES)

    fit = FitSettings(num_atoms=1024, batch_size=256, steps=args.steps)
    neb = {}
    for i, (name, theta) in enumerate(thetas.items()):
        torch.manual_seed(10 + i)
        estimator, _ = train_estimator("nre", theta, task.simulate(theta), box, TRAINING)
        central, low, high = _unfold(estimator, box, x, fit, args.bootstrap, seed=20 + i)
        neb[name] = {"density": central, "low": low, "high": high}
        print(name, "trained and unfolded", flush=True)
    (a, b) = neb.values()
    half = np.hypot((a["high"] - a["low"]) / 2, (b["high"] - b["low"]) / 2)
    neb_agree = float(np.mean(np.abs(a["density"] - b["density"]) <= half))
    neb_pull = float(np.sqrt(np.mean(((a["density"] - b["density"]) / np.where(half > 0, half, np.inf)) ** 2)))

    theta_a = thetas["A: U(-5, 5)"]
    response = response_from_simulations(theta_a[:, 0].numpy(), task.simulate(theta_a)[:, 0].numpy(), EDGES, OBSERVABLE_EDGES)
    counts, _ = np.histogram(x[:, 0].numpy(), OBSERVABLE_EDGES)
    shape_b, _ = np.histogram(thetas["B: N(2, 3^2) in the box"][:, 0].numpy(), EDGES)
    ibu = {}
    for name, prior in (("uniform", None), ("B's shape", shape_b / shape_b.sum())):
        result = iterative_unfold(counts.astype(float), np.sqrt(counts), response.matrix, response.matrix_err,
                                  response.efficiencies, response.efficiencies_err, prior=prior, return_iterations=True)
        widths = np.diff(EDGES)
        density = lambda u: np.asarray(u) / np.sum(u) / widths  # noqa: E731
        ibu[name] = {"stopped_at": int(result.num_iterations), "density": density(result.unfolded),
                     "err": np.hypot(result.stat_err, result.sys_err) / np.sum(result.unfolded) / widths,
                     "by_iteration": {k: density(result.iterations[k - 1]["unfolded"]) for k in (1, 3, 10)
                                      if k <= len(result.iterations)}}
    (u, v) = ibu.values()
    ibu_pull = float(np.sqrt(np.mean(((u["density"] - v["density"]) / np.hypot(u["err"], v["err"])) ** 2)))
    by_iteration = {k: float(np.max(np.abs(u["by_iteration"][k] - v["by_iteration"][k])))
                    for k in u["by_iteration"] if k in v["by_iteration"]}
    report = {
        "environment": environment("cpu"),
        "settings": vars(args),
        "neb_fraction_of_bins_agreeing_within_bands": neb_agree,
        "neb_rms_pull_between_priors": neb_pull,
        "neb_max_abs_difference": float(np.max(np.abs(a["density"] - b["density"]))),
        "neb_max_abs_error_vs_truth": {k: float(np.max(np.abs(r["density"] - truth))) for k, r in neb.items()},
        "ibu_stopped_at": {k: r["stopped_at"] for k, r in ibu.items()},
        "ibu_rms_pull_between_priors": ibu_pull,
        "ibu_max_abs_difference_by_iteration": by_iteration,
        "ibu_max_abs_error_vs_truth": {k: float(np.max(np.abs(r["density"] - truth))) for k, r in ibu.items()},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
