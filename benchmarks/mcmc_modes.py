"""Benchmark: does our batched MCMC find the weights of separated modes? SLCP with its exact likelihood.

SLCP's posterior has four separated modes (the simulator sees theta_3 and theta_4 only
through their squares). Its likelihood is Gaussian and exact here (4 draws of a 2-d
Gaussian), so the sampler alone is measured, not an estimator. For
``--observations`` observations simulated from prior draws, ``--samples`` samples each:

* the reference: our SIR with proposals grown until the ESS reaches ``--reference-ess``
  (prior draws weighted by the exact likelihood: exact as the ESS grows);
* our MCMC (``--chains`` chains per observation, thinned by 15) with
  differential-evolution moves only (``jump_every=None``) and with the
  independence jumps every 5 steps (the default);
* our SIR at its default (proposals grown until the ESS reaches the samples asked for).

Per sampler: time, C2ST (our torch C2ST, the benchmark protocol) against the reference,
mean ± standard error over the observations, and the largest error in the share of
the four sign modes (sign of theta_3 x sign of theta_4).

Run:
    OMP_NUM_THREADS=1 python benchmarks/mcmc_modes.py --out benchmarks/out/mcmc_modes.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import mean_and_sem, write_report  # noqa: E402

from sbi_core.diagnostics import c2st_many  # noqa: E402
from sbi_core.sampling import sample_mcmc, sample_sir  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402
from sbi_core.tasks.slcp import slcp_log_likelihood  # noqa: E402


class ExactSLCPLikelihood(nn.Module):
    """log p(x | theta) of SLCP (4 independent 2-d Gaussian draws), as a log-ratio model."""

    dim_theta, x_shape = 5, (8,)

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        return slcp_log_likelihood(theta[:, None], x[None])

    def per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        return slcp_log_likelihood(theta, x[:, None])


def _mode_shares(samples: Tensor) -> Tensor:
    """Share of each (sign theta_3, sign theta_4) quadrant, ``[M, 4]``."""
    quadrant = (samples[..., 2] > 0).long() * 2 + (samples[..., 3] > 0).long()
    return torch.stack([(quadrant == q).float().mean(1) for q in range(4)], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=10)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=20)
    parser.add_argument("--reference-ess", type=float, default=20_000)
    parser.add_argument("--out", help="JSON file for the report (also printed)")
    args = parser.parse_args()

    task, model = BUILTIN_TASKS["slcp"](), ExactSLCPLikelihood()
    torch.manual_seed(0)
    x = task.simulate(task.prior.sample((args.observations,)))
    start = time.perf_counter()
    reference, ess = sample_sir(model, task.prior, x, args.samples, min_ess=args.reference_ess,
                                max_proposals=2**24, seed=1)
    print(f"reference: SIR, ESS {float(ess.min()):.0f} to {float(ess.max()):.0f}, {time.perf_counter() - start:.0f} s",
          flush=True)
    samplers = {
        "MCMC, differential evolution only": lambda: sample_mcmc(model, task.prior, x, args.samples,
                                                                 num_chains=args.chains, thin=15, jump_every=None,
                                                                 seed=2),
        "MCMC, jumps every 5 steps (default)": lambda: sample_mcmc(model, task.prior, x, args.samples,
                                                                   num_chains=args.chains, thin=15, seed=2),
        "SIR, default (grows to ESS = samples)": lambda: sample_sir(model, task.prior, x, args.samples, seed=3)[0],
    }
    rows = {"reference_ess_min": float(ess.min())}
    for name, sampler in samplers.items():
        start = time.perf_counter()
        samples = sampler()
        seconds = time.perf_counter() - start
        accuracy = [t.accuracy for t in c2st_many(reference, samples, seed=1)]
        share_error = float((_mode_shares(samples) - _mode_shares(reference)).abs().max())
        mean, sem = mean_and_sem(accuracy)
        rows[name] = {"seconds": seconds, "c2st_mean": mean, "c2st_sem": sem, "c2st": accuracy,
                      "largest_mode_share_error": share_error}
        print(f"{name}: {seconds:.1f} s, C2ST {rows[name]['c2st_mean']:.3f} ± {rows[name]['c2st_sem']:.3f}, "
              f"largest mode-share error {share_error:.3f}", flush=True)
    write_report(rows, vars(args), "cpu", args.out)


if __name__ == "__main__":
    main()
