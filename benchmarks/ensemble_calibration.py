"""Benchmark: calibration of NRE-B alone, as an ensemble, and of BNRE, on gaussian_linear and two_moons.

Issue 14's ensemble check. Per task: ``--simulations`` (10^4) training simulations, the
schema's default training and sampling settings (batched MCMC), and these estimators:
NRE-B (one network), NRE-B as an ensemble of ``--members`` (independent seeds, all the
simulations; and, with ``--bootstrap``, on bootstrap resamples), BNRE (one network).
Each is calibrated on ``--test`` held-out simulations x ``--samples`` posterior samples
(:func:`sbi_core.diagnostics.calibrate`: expected HPD coverage and its verdict, TARP,
SBC), as the workflow's diagnose step does, and its C2ST (our torch C2ST, the benchmark
protocol) against the exact posterior is taken for ``--observations`` observations with
``--c2st-samples`` samples each, so a better calibration bought with a worse posterior
shows.

Run (one thread; about 40 min per task on the 2-core CPU):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ensemble_calibration.py --out benchmarks/out/ensemble_calibration.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import mean_and_sem, write_report  # noqa: E402
from defaults_c2st import default_settings  # noqa: E402

from sbi_core.diagnostics import c2st_many, calibrate, tarp_uniform_references  # noqa: E402
from sbi_core.estimators import train_estimator  # noqa: E402
from sbi_core.seeding import derive_seed, seed_everything  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["gaussian_linear", "two_moons"])
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--bootstrap", action="store_true", help="also an ensemble on bootstrap resamples")
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--c2st-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="JSON file for the report (also printed)")
    args = parser.parse_args()

    variants: dict[str, tuple[str, dict[str, Any]]] = {
        "NRE-B": ("nre", {}),
        f"NRE-B, ensemble of {args.members}": ("nre", {"ensemble_members": args.members}),
        "BNRE": ("bnre", {}),
    }
    if args.bootstrap:
        variants[f"NRE-B, ensemble of {args.members}, bootstrap"] = (
            "nre", {"ensemble_members": args.members, "ensemble_bootstrap": True})
    rows: dict[str, Any] = {}
    for name in args.tasks:
        task = BUILTIN_TASKS[name]()
        settings = default_settings(name, len(task.parameter_names))
        torch.manual_seed(args.seed)
        theta, test_theta = task.prior.sample((args.simulations,)), task.prior.sample((args.test,))
        x, test_x = task.simulate(theta), task.simulate(test_theta)
        x_o = task.simulate(task.prior.sample((args.observations,)))
        reference = torch.stack([task.reference_posterior(x_o[i : i + 1], args.c2st_samples) for i in range(len(x_o))])
        references = tarp_uniform_references(test_theta.numpy(), np.random.default_rng(args.seed))
        rows[name] = {}
        for label, (method, ensemble) in variants.items():
            seed_everything(derive_seed(args.seed, name, method))  # one seed per method: the ensemble's
            start = time.perf_counter()                              # first member is the single network
            estimator, history = train_estimator(method, theta, x, task.prior, {**settings["training"], **ensemble})
            trained = time.perf_counter() - start
            posterior = estimator.posterior(settings["sampling"])
            seed_everything(derive_seed(args.seed, name, "calibrate"))
            result = calibrate(test_theta, test_x, posterior.sample, posterior.log_density, args.samples, references,
                               seed=args.seed)
            accuracy = [t.accuracy for t in c2st_many(reference, posterior.sample(x_o, args.c2st_samples), seed=1)]
            mean, sem = mean_and_sem(accuracy)
            rows[name][label] = {
                "coverage_verdict": result.coverage["verdict"], "coverage_max_deviation": result.coverage["max_deviation"],
                "tarp_verdict": result.tarp.get("verdict"), "tarp_atc": result.tarp.get("atc"),
                "sbc_min_ks_pvalue": result.sbc["parameters"]["min_ks_pvalue"], "c2st_mean": mean, "c2st_sem": sem,
                "epochs": [m["epochs_trained"] for m in history.get("members", [history])],
                "best_validation_loss": [m["best_validation_loss"] for m in history.get("members", [history])],
                "train_seconds": trained, "calibrate_seconds": sum(result.seconds.values()),
            }
            row = rows[name][label]
            print(f"{name} {label}: coverage {row['coverage_verdict']} (max dev {row['coverage_max_deviation']:.3f}), "
                  f"TARP {row['tarp_verdict']} (ATC {row['tarp_atc']:+.3f}), SBC min p {row['sbc_min_ks_pvalue']:.2g}, "
                  f"C2ST {mean:.3f} ± {sem:.3f}; train {trained:.0f} s", flush=True)
            write_report(rows, vars(args), "cpu", args.out)


if __name__ == "__main__":
    main()
