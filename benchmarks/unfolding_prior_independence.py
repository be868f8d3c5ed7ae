"""Prior independence: one population unfolded with estimators trained under two different simulation
priors (NEB), beside IBU started from two different priors.

The gaussian_smearing task (x = theta + N(0.5, 1)) and its closure source N(1, 1.5^2) in
[-5, 5]. Estimators (NRE, our ratio core, 10^4 simulations) are trained under
A: U(-5, 5) (the task's prior) and B: N(2, 3^2) restricted to the same box by rejection
(a differently shaped simulation prior); the same 10,000 observations are unfolded under
each. Each prior's result is an ensemble of ``--members`` independent repeats of the whole
procedure (the NRE retrained on a bootstrap resample of that prior's simulations, the source
fitted afresh from the prior on a bootstrap resample of the population): their mean is the
result and their standard deviation its 68% band, which so holds the population's, the
estimator's and the optimisation's scatter. NEB is prior-independent when the two agree
within their bands. IBU (20 causes, 30 observable bins) uses the response of the A
simulations and starts from a uniform prior or from B's shape; its result depends on that
start at the iteration where it stops.

Run: ``.venv/bin/python benchmarks/unfolding_prior_independence.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import environment  # noqa: E402

from sbi_core.estimators import train_estimator  # noqa: E402
from sbi_core.io import write_json  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402
from sbi_core.tasks.box import BoxUniform  # noqa: E402
from sbi_core.unfolding import FitSettings, SourceFlow, fit_source  # noqa: E402
from sbi_core.unfolding.ibu import iterative_unfold, response_from_simulations  # noqa: E402
from sbi_core.unfolding.sources import BUILTIN_SOURCES  # noqa: E402
from sbi_core.unfolding.spectra import binned_density  # noqa: E402

EDGES = np.linspace(-5, 5, 21)
OBSERVABLE_EDGES = np.linspace(-6.5, 7.5, 31)
TRAINING = {"hidden_features": 64, "num_blocks": 2, "num_atoms": 10, "batch_size": 200, "learning_rate": 1e-3,
            "max_epochs": 100, "patience": 10, "validation_fraction": 0.1}


def _gaussian_in_box(num: int, generator: torch.Generator) -> torch.Tensor:
    draws = 2.0 + 3.0 * torch.randn(4 * num, 1, generator=generator)
    return draws[(draws.abs() <= 5).all(1)][:num]


def _ensemble(theta: torch.Tensor, task, prior, x: torch.Tensor, fit: FitSettings, members: int, seed: int) -> dict:
    """Mean and standard deviation per bin of `members` repeats: retrain on resampled simulations,
    refit from the prior on a resampled population."""
    rng = np.random.default_rng(seed)
    simulated = task.simulate(theta)
    densities = []
    for m in range(members):
        torch.manual_seed(seed + 100 * m)
        resample = torch.as_tensor(rng.integers(len(theta), size=len(theta)))
        estimator, _ = train_estimator("nre", theta[resample], simulated[resample], prior, TRAINING)
        source = SourceFlow.for_prior(prior, transforms=2, hidden_features=[32], bins=4)
        population = x[torch.as_tensor(rng.integers(len(x), size=len(x)))]
        fit_source(estimator, population, source, fit, seed=seed + 100 * m + 1, progress=False)
        with torch.no_grad():
            densities.append(binned_density(source().sample((50_000,))[:, 0].numpy(), EDGES))
        print(f"  member {m + 1}/{members}", flush=True)
    stacked = np.stack(densities)
    return {"density": stacked.mean(0), "sd": stacked.std(0, ddof=1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=10_000)
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=4, help="repeats of the whole procedure per prior")
    parser.add_argument("--atoms", type=int, default=256)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", help="JSON file for the report (also printed)")
    args = parser.parse_args()

    task = BUILTIN_TASKS["gaussian_smearing"]()
    box = BoxUniform(torch.tensor([-5.0]), torch.tensor([5.0]))
    generator = torch.Generator().manual_seed(0)
    thetas = {"A: U(-5, 5)": box.sample((args.simulations,)), "B: N(2, 3^2) in the box": _gaussian_in_box(args.simulations, generator)}
    torch.manual_seed(1)
    population_theta = BUILTIN_SOURCES["gaussian_smearing"]().sample((args.population,))
    x = task.simulate(population_theta)
    truth = binned_density(BUILTIN_SOURCES["gaussian_smearing"]().sample((200_000,))[:, 0].numpy(), EDGES)

    fit = FitSettings(num_atoms=args.atoms, batch_size=256, steps=args.steps)
    neb = {}
    for i, (name, theta) in enumerate(thetas.items()):
        print(name, flush=True)
        neb[name] = _ensemble(theta, task, box, x, fit, args.members, seed=10 + i)
    (a, b) = neb.values()
    half = np.hypot(a["sd"], b["sd"])
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
        "neb_rms_pull_vs_truth": {k: float(np.sqrt(np.mean(((r["density"] - truth) / np.where(r["sd"] > 0, r["sd"], np.inf)) ** 2)))
                                  for k, r in neb.items()},
        "neb_band_covers_truth": {k: float(np.mean(np.abs(r["density"] - truth) <= r["sd"])) for k, r in neb.items()},
        "ibu_stopped_at": {k: r["stopped_at"] for k, r in ibu.items()},
        "ibu_rms_pull_between_priors": ibu_pull,
        "ibu_max_abs_difference_by_iteration": by_iteration,
        "ibu_max_abs_error_vs_truth": {k: float(np.max(np.abs(r["density"] - truth))) for k, r in ibu.items()},
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
