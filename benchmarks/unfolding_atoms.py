"""Neural empirical Bayes against the number of atoms K: the binned closure of the falling spectrum.

L_K = mean_i log (1/K) sum_k r(theta_k, x_i) is biased low by about Var(r) / (2 K E[r]^2) per
observation; the bias is largest for the observations under whose likelihood the source puts
few of its K atoms (here the high-energy tail of a steep spectrum), and it pulls the fitted
source towards them. This fits the falling_spectrum task's closure population (10,000 recorded
events of the E^-2.5 source, trigger efficiency included) with the exact likelihood, or with
a trained estimator (``--estimator``, a saved NRE/NLE of that task), for each K, and reports
the binned chi-square per bin against the true source (18 bins on [10, 100] GeV, each with the
multinomial error of a population of that size: the yardstick of ``unfold_spectra``) and a KS
test of a population regenerated from the fit against the observed one.

Run: ``.venv/bin/python benchmarks/unfolding_atoms.py [--atoms 256 1024] [--estimator biased roulette]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import environment  # noqa: E402

from sbi_core.estimators import load_estimator  # noqa: E402
from sbi_core.io import write_json  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402
from sbi_core.tasks.falling_spectrum import falling_spectrum_log_likelihood  # noqa: E402
from sbi_core.unfolding import FitSettings, LikelihoodModel, SourceFlow, fit_source  # noqa: E402
from sbi_core.unfolding.population import simulate_population  # noqa: E402
from sbi_core.unfolding.sources import BUILTIN_SOURCES  # noqa: E402
from sbi_core.unfolding.spectra import binned_density, chi2_per_bin  # noqa: E402

EDGES = np.linspace(10.0, 100.0, 19)


def _closure(task, source: SourceFlow, x: torch.Tensor, truth: np.ndarray, seed: int) -> dict[str, float]:
    widths = np.diff(EDGES)
    probability = truth * widths
    error = np.sqrt(probability * (1 - probability) / len(x)) / widths
    torch.manual_seed(seed)
    with torch.no_grad():
        samples = source().sample((200_000,))
    detected = samples[torch.rand(len(samples)) < task.efficiency(samples)][:50_000]
    ks = stats.ks_2samp(task.simulate(detected)[:, 0].numpy(), x[:, 0].numpy())
    return {"chi2_per_bin": chi2_per_bin(binned_density(samples[:, 0].numpy(), EDGES), error, truth),
            "regenerated_ks_statistic": float(ks.statistic), "regenerated_ks_pvalue": float(ks.pvalue)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--estimator", nargs="+", default=["biased"], choices=["biased", "roulette"])
    parser.add_argument("--model", default="exact", help="'exact', or the path of a trained estimator (.pt) of the task")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--population", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="JSON file for the results (also printed)")
    args = parser.parse_args()

    task = BUILTIN_TASKS["falling_spectrum"]()
    true_source = BUILTIN_SOURCES["falling_spectrum"]()
    _, x, _ = simulate_population(task, true_source, args.population, seed=args.seed, progress=False)
    x = torch.as_tensor(x)
    torch.manual_seed(args.seed)
    truth = binned_density(true_source.sample((1_000_000,))[:, 0].numpy(), EDGES)
    model = (LikelihoodModel(falling_spectrum_log_likelihood, 1, (1,)) if args.model == "exact"
             else load_estimator(args.model, prior=task.prior))
    rows = []
    for estimator in args.estimator:
        for atoms in args.atoms:
            torch.manual_seed(args.seed)
            source = SourceFlow.for_prior(task.prior, transforms=2, hidden_features=[32], bins=4)
            settings = FitSettings(num_atoms=atoms, batch_size=args.batch_size, steps=args.steps, estimator=estimator)
            start = time.perf_counter()
            fit_source(model, x, source, settings, task.efficiency, seed=args.seed, progress=False)
            row = {"estimator": estimator, "atoms": atoms, "fit_seconds": time.perf_counter() - start,
                   **_closure(task, source, x, truth, args.seed)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    report = {"environment": environment("cpu"), "settings": vars(args), "rows": rows}
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
