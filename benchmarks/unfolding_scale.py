"""Neural empirical Bayes at scale: fit time and peak memory against the population size n and the atoms K,
with iterative Bayesian unfolding's time beside it.

Each configuration runs in a fresh process (peak resident memory is per process), on the
gaussian_smearing task with a trained NRE (our ratio core) as the estimator:

* K = 1024, n = 10,000: one full fit (``--fit-steps`` optimiser steps, the default), timed;
* n = 10^4 .. 10^6 at K = 1024, and K = 128 .. 4096 at n = 10^4: ``--steps`` optimiser steps on
  the whole population, timed per step (after two untimed warm-up steps). A step scores one batch
  against K atoms whatever n is, so peak memory minus the population's own bytes must not grow
  with n, nor the step time; one pass over the population costs ``ceil(n / batch)`` steps (reported).
* IBU on the same population (20 causes x 30 observable bins), timed.

Run: ``.venv/bin/python benchmarks/unfolding_scale.py [--device cuda] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import environment  # noqa: E402

from sbi_core.estimators import load_estimator, train_estimator  # noqa: E402
from sbi_core.io import write_json  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402
from sbi_core.unfolding import FitSettings, SourceFlow, fit_source  # noqa: E402
from sbi_core.unfolding.sources import BUILTIN_SOURCES  # noqa: E402

BATCH = 256
TRAINING = {"hidden_features": 64, "num_blocks": 2, "num_atoms": 10, "batch_size": 200, "learning_rate": 1e-3,
            "max_epochs": 30, "patience": 5, "validation_fraction": 0.1}


def _train(path: str) -> None:
    """Trains the NRE once (on the CPU); every configuration's process loads it."""
    task = BUILTIN_TASKS["gaussian_smearing"]()
    torch.manual_seed(0)
    theta = task.prior.sample((10_000,))
    estimator, _ = train_estimator("nre", theta, task.simulate(theta), task.prior, TRAINING)
    estimator.save(path)


def _estimator(path: str, device: str):
    task = BUILTIN_TASKS["gaussian_smearing"]()
    return task, load_estimator(path, prior=task.prior, device=device)


def _population(task, n: int) -> torch.Tensor:
    torch.manual_seed(1)
    theta = BUILTIN_SOURCES["gaussian_smearing"]().sample((n,))
    return task.simulate(theta)


def run_one(n: int, atoms: int, steps: int, device: str, estimator_path: str) -> dict:
    """One configuration, in this process: returns seconds and peak memory."""
    task, estimator = _estimator(estimator_path, device)
    x = _population(task, n)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Two untimed steps on a throwaway source first: CUDA's context, cuBLAS and kernel selection are
    # paid once per process and do not belong to a step's time.
    fit_source(estimator, x, SourceFlow.for_prior(task.prior), FitSettings(num_atoms=atoms, batch_size=BATCH, steps=2),
               progress=False)
    source = SourceFlow.for_prior(task.prior)
    settings = FitSettings(num_atoms=atoms, batch_size=BATCH, steps=steps)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    fit_source(estimator, x, source, settings, progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    record = {"n": n, "atoms": atoms, "device": device, "seconds": seconds,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "rss_before_fit_mb": rss_before, "population_mb": x.numel() * 4 / 2**20}
    record["steps"] = steps
    record["seconds_per_step"] = seconds / steps
    record["pass_over_population_seconds"] = seconds / steps * math.ceil(n / BATCH)
    if device == "cuda":
        record["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return record


def run_ibu(n: int) -> dict:
    from sbi_core.unfolding.ibu import iterative_unfold, response_from_simulations

    task = BUILTIN_TASKS["gaussian_smearing"]()
    torch.manual_seed(0)
    theta = task.prior.sample((10_000,))
    x_train = task.simulate(theta)[:, 0].numpy()
    population = _population(task, n)[:, 0].numpy()
    start = time.perf_counter()
    causes, observables = np.linspace(-5, 5, 21), np.linspace(-6, 7, 31)
    response = response_from_simulations(theta[:, 0].numpy(), x_train, causes, observables)
    counts, _ = np.histogram(population, observables)
    result = iterative_unfold(counts.astype(float), np.sqrt(counts), response.matrix, response.matrix_err,
                              response.efficiencies, response.efficiencies_err)
    return {"n": n, "seconds": time.perf_counter() - start, "iterations": int(result.num_iterations)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--fit-steps", type=int, default=FitSettings().steps)
    parser.add_argument("--out", help="also write the results (the JSON printed last) to this file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: 'n,atoms,steps'
    parser.add_argument("--estimator", default=str(Path(tempfile.gettempdir()) / "unfolding_scale_nre.pt"))
    args = parser.parse_args()
    if args.one:
        n, atoms, steps = (int(v) for v in args.one.split(","))
        print(json.dumps(run_one(n, atoms, steps, args.device, args.estimator)))
        return
    _train(args.estimator)

    configurations = [(10_000, 1024, args.fit_steps)]
    configurations += [(n, 1024, args.steps) for n in (10_000, 100_000, 1_000_000)]
    configurations += [(10_000, k, args.steps) for k in (128, 512, 2048, 4096)]
    rows = []
    for n, atoms, steps in configurations:
        out = subprocess.run([sys.executable, __file__, "--one", f"{n},{atoms},{steps}", "--device", args.device,
                              "--estimator", args.estimator],
                             capture_output=True, text=True)
        if out.returncode != 0:  # keep the other configurations (a GPU out of memory, say) and say why
            print(out.stderr[-3000:], file=sys.stderr, flush=True)
            rows.append({"n": n, "atoms": atoms, "device": args.device, "steps": steps,
                         "error": (out.stderr.strip().splitlines() or ["no output"])[-1]})
            print(json.dumps(rows[-1]), flush=True)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    ibu = [run_ibu(n) for n in (10_000, 1_000_000)]
    results = {"environment": environment(args.device), "neb": rows, "ibu": ibu}
    print(json.dumps(results, indent=1))
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
