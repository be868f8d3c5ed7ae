"""Benchmark: SIR's effective sample size with a fixed proposal count and with proposals that grow.

two_moons, NRE-B (our ratio core, default training settings) on 10^4 simulations;
``--observations`` observations simulated from prior draws, 1000 samples each, three ways:
the old default (10^4 prior proposals, fixed: ``max_proposals = num_proposals``), the
new default (10^4 first, doubling until the ESS reaches 1000, at most 2^20), and a
fixed 2 x 10^5 (the accurate SIR earlier benchmarks used as a reference). Per way: the
time, the ESS (median and smallest), the distinct points among the 1000 samples, and
the C2ST (our torch C2ST, the benchmark protocol) against the task's exact posterior
for the first ``--c2st-observations`` observations.

Run:
    OMP_NUM_THREADS=1 python benchmarks/sir_effective_sample_size.py --out benchmarks/out/sir_ess.json
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import mean_and_sem, write_report  # noqa: E402

from sbi_core.diagnostics import c2st_many  # noqa: E402
from sbi_core.ratio import train_ratio_estimator  # noqa: E402
from sbi_core.sampling import LowEffectiveSampleSizeWarning, sample_sir  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402

WAYS = {
    "fixed 10^4 (the old default)": {"num_proposals": 10_000, "max_proposals": 10_000},
    "growing from 10^4 (the new default)": {"num_proposals": 10_000},
    "fixed 2 x 10^5": {"num_proposals": 200_000, "max_proposals": 200_000},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--observations", type=int, default=100)
    parser.add_argument("--c2st-observations", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", help="JSON file for the report (also printed)")
    args = parser.parse_args()

    task = BUILTIN_TASKS["two_moons"]()
    torch.manual_seed(0)
    theta = task.prior.sample((args.simulations,))
    # The network its figures in RESULTS.md were recorded with (the library's defaults then).
    network, _ = train_ratio_estimator(theta, task.simulate(theta), "nre_b", {"num_atoms": 10, "patience": 20}, seed=1,
                                       show_progress_bar=False)
    x = task.simulate(task.prior.sample((args.observations,)))
    torch.manual_seed(2)
    reference = torch.stack([task.reference_posterior(x[m], args.samples) for m in range(args.c2st_observations)])

    rows = {}
    for name, options in WAYS.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowEffectiveSampleSizeWarning)
            samples, ess = sample_sir(network, task.prior, x, args.samples, seed=3, **options)
        seconds = time.perf_counter() - start
        distinct = [len(torch.unique(s, dim=0)) for s in samples]
        tests = c2st_many(reference, samples[: args.c2st_observations], seed=1)
        accuracy = [t.accuracy for t in tests]
        rows[name] = {
            "seconds": seconds, "ess_median": float(ess.median()), "ess_min": float(ess.min()),
            "below_samples": int((ess < args.samples).sum()), "distinct_median": float(np.median(distinct)),
        }
        rows[name]["c2st_mean"], rows[name]["c2st_sem"] = mean_and_sem(accuracy)
        print(f"{name}: {seconds:.1f} s, ESS median {rows[name]['ess_median']:.0f} (smallest "
              f"{rows[name]['ess_min']:.0f}, {rows[name]['below_samples']} of {args.observations} below "
              f"{args.samples}), distinct {rows[name]['distinct_median']:.0f}, C2ST {rows[name]['c2st_mean']:.3f} "
              f"± {rows[name]['c2st_sem']:.3f}", flush=True)
    write_report(rows, vars(args), "cpu", args.out)


if __name__ == "__main__":
    main()
