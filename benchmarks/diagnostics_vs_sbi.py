"""Benchmark: calibration diagnostics for 1000 test simulations x 1000 samples, ours and sbi 0.27's.

On the 10-d Gaussian-linear task, NPE, NLE and NRE are trained once (our
training settings, the default config's sizes). Then, per method, in one run:

* ours: :func:`sbi_core.diagnostics.calibrate`: one batched sampling pass
  (NPE: its flow; NLE and NRE: our batched MCMC) shared by SBC (parameters and
  log-density), expected HPD coverage and TARP, each step timed;
* sbi, as its documentation runs them: ``run_sbc`` + ``check_sbc`` (SBC),
  ``run_sbc(reduce_fns=posterior.log_prob)`` (expected coverage) and
  ``run_tarp`` + ``check_tarp``, each sampling the posterior itself. NPE
  through ``DirectPosterior``; NLE through ``MCMCPosterior`` with vectorized
  slice sampling (one chain per observation, 50 warm-up steps: cheaper than
  sbi's defaults), run on ``--sbi-subset`` simulations and extrapolated
  linearly to all (marked so). sbi's NRE was compared in ``ratio_vs_sbi.py``.

Ratios are sbi / ours (above 1: we are faster).

Run:
    python benchmarks/diagnostics_vs_sbi.py --out benchmarks/out/diagnostics_vs_sbi.json
Smoke test:
    python benchmarks/diagnostics_vs_sbi.py --num-train 500 --num-test 120 --num-samples 100 \\
        --sbi-subset 10 --max-epochs 3 --out /tmp/diagnostics_vs_sbi.json
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import numpy as np
import torch
from bench_common import environment, timer
from sbi.diagnostics import check_sbc, check_tarp, run_sbc, run_tarp
from sbi.inference import DirectPosterior, MCMCPosterior
from sbi.inference.potentials import likelihood_estimator_based_potential

from sbi_core.config import validate_config
from sbi_core.diagnostics import calibrate, tarp_uniform_references
from sbi_core.estimators import train_estimator
from sbi_core.io import write_json
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import BUILTIN_TASKS

__all__ = ["main", "parse_arguments"]

SCHEMA = "workflow/schemas/config.schema.yaml"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-train", type=int, default=10_000, help="training simulations")
    parser.add_argument("--num-test", type=int, default=1000, help="test simulations")
    parser.add_argument("--num-samples", type=int, default=1000, help="posterior samples per test simulation")
    parser.add_argument("--methods", nargs="+", default=["npe", "nle", "nre"], choices=["npe", "nle", "nre"])
    parser.add_argument("--sbi-subset", type=int, default=100, help="test simulations for sbi's NLE (extrapolated)")
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    return parser.parse_args(argv)


def _defaults(max_epochs: int) -> dict:
    """The workflow's defaults (training, sampling, diagnostics) from the config schema."""
    analysis = {
        "task": "gaussian_linear", "simulations": {"train": 10, "test": 10}, "methods": ["npe"],
        "observations": [{"name": "o", "theta": [0.0] * 10}], "training": {"max_epochs": max_epochs},
        "diagnostics": {"num_simulations": 10},
    }
    return validate_config({"analyses": {"bench": analysis}}, SCHEMA, check_files=False)["analyses"]["bench"]


def _sbi_diagnostics(posterior, theta: torch.Tensor, x: torch.Tensor, prior, args, times: dict, prefix: str) -> dict:
    """sbi's SBC, sample-based expected coverage and TARP, as its tutorials run them."""
    with timer("cpu", times, f"{prefix}_sbc"):
        ranks, dap = run_sbc(theta, x, posterior, args.num_samples, show_progress_bar=False)
        checks = check_sbc(ranks, prior.sample((len(theta),)), dap, num_posterior_samples=args.num_samples)
    with timer("cpu", times, f"{prefix}_coverage"):
        density_ranks, _ = run_sbc(
            theta, x, posterior, args.num_samples, reduce_fns=posterior.log_prob, show_progress_bar=False
        )
    with timer("cpu", times, f"{prefix}_tarp"):
        ecp, alpha = run_tarp(theta, x, posterior, num_posterior_samples=args.num_samples, show_progress_bar=False)
        atc, ks_pvalue = check_tarp(ecp, alpha)
    return {
        "min_ks_pvalue": float(checks["ks_pvals"].min()),
        "log_density_rank_mean": float(density_ranks.float().mean() / args.num_samples),
        "atc": atc,
        "tarp_ks_pvalue": float(ks_pvalue),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints the table, writes the JSON and returns the results."""
    args = parse_arguments(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="sbi")
    defaults = _defaults(args.max_epochs)
    task = BUILTIN_TASKS["gaussian_linear"]()
    seed_everything(args.seed)
    theta = task.prior.sample((args.num_train,))
    x = task.simulate(theta)
    theta_test = task.prior.sample((args.num_test,))
    x_test = task.simulate(theta_test)
    references = tarp_uniform_references(theta_test.numpy(), np.random.default_rng(args.seed))

    results: dict[str, Any] = {"arguments": vars(args), "methods": {}}
    for method in args.methods:
        times: dict[str, float] = {}
        seed_everything(derive_seed(args.seed, "train", method))
        with timer("cpu", times, "training"):
            estimator, history = train_estimator(method, theta, x, task.prior, defaults["training"])
        posterior = estimator.posterior(defaults["sampling"])
        seed_everything(derive_seed(args.seed, "ours", method))
        ours = calibrate(theta_test, x_test, posterior.sample, posterior.log_density, args.num_samples, references,
                         seed=args.seed)
        times.update({f"ours_{k}": v for k, v in ours.seconds.items()})
        times["ours_total"] = sum(ours.seconds.values())
        entry = {
            "epochs_trained": history["epochs_trained"],
            "ours": {"verdicts": {"coverage": ours.coverage["verdict"], "tarp": ours.tarp["verdict"]},
                     "min_ks_pvalue": ours.sbc["parameters"]["min_ks_pvalue"], "atc": ours.tarp["atc"]},
        }
        if method in ("npe", "nle"):
            subset = args.num_test if method == "npe" else min(args.sbi_subset, args.num_test)
            if method == "npe":
                sbi_posterior = DirectPosterior(posterior_estimator=estimator.network, prior=task.prior)
            else:
                potential, transform = likelihood_estimator_based_potential(estimator.network, task.prior, x_o=None)
                sbi_posterior = MCMCPosterior(potential, proposal=task.prior, theta_transform=transform,
                                              method="slice_np_vectorized", num_chains=1, warmup_steps=50, thin=1)
            seed_everything(derive_seed(args.seed, "sbi", method))
            entry["sbi"] = _sbi_diagnostics(sbi_posterior, theta_test[:subset], x_test[:subset], task.prior, args,
                                            times, "sbi")
            scale = args.num_test / subset
            times["sbi_total"] = scale * sum(times[f"sbi_{k}"] for k in ("sbc", "coverage", "tarp"))
            entry["sbi_extrapolated_from"] = subset if scale > 1 else None
        entry["seconds"] = times
        results["methods"][method] = entry
        print(f"{method}: {times}", flush=True)
    results["environment"] = environment("cpu")
    write_json(args.out, results)
    _print_table(args, results)
    return results


def _print_table(args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(f"\n{args.num_test} test simulations x {args.num_samples} samples, 10-d Gaussian linear "
          f"({results['environment']['device_name']}, {results['environment']['torch_threads']} threads)")
    print(f"{'method':<6} {'ours: sample':>12} {'log-dens.':>9} {'SBC+cov+TARP':>12} {'total s':>8} "
          f"{'sbi total s':>11} {'sbi/ours':>8}  verdicts (coverage, TARP)")
    for method, entry in results["methods"].items():
        s = entry["seconds"]
        checks = s["ours_sbc"] + s["ours_coverage"] + s["ours_tarp"]
        sbi_total = s.get("sbi_total")
        note = f" (sbi extrapolated from {entry['sbi_extrapolated_from']})" if entry.get("sbi_extrapolated_from") else ""
        sbi_cells = f"{sbi_total:>11.1f} {sbi_total / s['ours_total']:>8.1f}" if sbi_total else f"{'-':>11} {'-':>8}"
        verdicts = entry["ours"]["verdicts"]
        print(f"{method:<6} {s['ours_sampling']:>12.1f} {s['ours_log_density']:>9.1f} {checks:>12.2f} "
              f"{s['ours_total']:>8.1f} {sbi_cells}  {verdicts['coverage']}, {verdicts['tarp']}{note}")


if __name__ == "__main__":
    main()
