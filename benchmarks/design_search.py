"""Best designs by multi-start gradient ascent against exhaustive grid search, and the cost of both.

Location finding (Foster et al. 2021) with T = 1 and T = 2 detectors, and the pharmacokinetic
model (Ryan et al. 2014) with T = 1 sampling time. For each: the sPCE of every grid design (one
batched pass per chunk of designs), multi-start Adam ascent on sPCE through the simulator, and
both winners re-estimated by sPCE with ``--fresh-inner`` contrastive samples (at least 10^5) on
fresh simulations. The issue's check: the ascent's best within 0.02 nats of the grid's best.
Speed: the EIG of 1,000 candidate designs in one batched pass, and the ascent with 256 starts,
timed with peak memory (RSS).

Run: ``.venv/bin/python benchmarks/design_search.py [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import environment  # noqa: E402

from sbi_core.design import candidate_search, design_task, likelihood_eig, multistart_ascent  # noqa: E402
from sbi_core.io import write_json  # noqa: E402

CASES = {  # name: (task, T, grid points per variable and experiment)
    "location_finding_T1": ("location_finding", 1, 61),
    "location_finding_T2": ("location_finding", 2, 11),
    "pharmacokinetic_T1": ("pharmacokinetic", 1, 193),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(name: str, args: argparse.Namespace) -> dict:
    task_name, experiments, points = CASES[name]
    task = design_task(task_name, experiments)
    torch.manual_seed(0)
    grid = task.space.grid(points)
    start = time.perf_counter()
    on_grid = candidate_search(lambda d: likelihood_eig(task, d, args.grid_outer, args.grid_inner).eig, grid,
                               batch_size=256)
    grid_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = multistart_ascent(lambda d: likelihood_eig(task, d, args.step_outer, args.step_inner).eig, task.space,
                               args.starts, args.steps, args.learning_rate,
                               generator=torch.Generator().manual_seed(1), progress=False)
    with torch.no_grad():
        finals = likelihood_eig(task, result.final, args.grid_outer, args.grid_inner).eig
    ascent_seconds = time.perf_counter() - start
    best = torch.stack([grid[on_grid.argmax()], result.final[finals.argmax()]])
    with torch.no_grad():
        fresh = likelihood_eig(task, best, args.fresh_outer, args.fresh_inner)
    return {
        "case": name, "grid_points": len(grid), "grid_seconds": grid_seconds,
        "grid_best": best[0].tolist(), "grid_best_eig": float(fresh.eig[0]), "grid_best_stderr": float(fresh.stderr[0]),
        "ascent_best": best[1].tolist(), "ascent_best_eig": float(fresh.eig[1]),
        "ascent_best_stderr": float(fresh.stderr[1]), "ascent_seconds": ascent_seconds,
        "ascent_minus_grid": float(fresh.eig[1] - fresh.eig[0]),
        "within_0.02_nats": bool(fresh.eig[1] >= fresh.eig[0] - 0.02), "peak_rss_mb": _peak_rss_mb(),
    }


def speed(args: argparse.Namespace) -> dict:
    """1,000 location-finding designs in one batched sPCE pass; 256 starts of ascent."""
    task = design_task("location_finding", 1)
    torch.manual_seed(2)
    designs = task.space.sample(1000)
    start = time.perf_counter()
    with torch.no_grad():
        likelihood_eig(task, designs, args.grid_outer, args.grid_inner)
    batch_seconds = time.perf_counter() - start
    start = time.perf_counter()
    multistart_ascent(lambda d: likelihood_eig(task, d, args.step_outer, args.step_inner).eig, task.space, 256,
                      args.steps, args.learning_rate, generator=torch.Generator().manual_seed(3), progress=False)
    return {"eig_1000_designs_seconds": batch_seconds, "eig_outer_inner": [args.grid_outer, args.grid_inner],
            "ascent_256_starts_seconds": time.perf_counter() - start, "ascent_steps": args.steps,
            "peak_rss_mb": _peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--grid-outer", type=int, default=256)
    parser.add_argument("--grid-inner", type=int, default=256)
    parser.add_argument("--step-outer", type=int, default=64)
    parser.add_argument("--step-inner", type=int, default=64)
    parser.add_argument("--fresh-outer", type=int, default=2000)
    parser.add_argument("--fresh-inner", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--out", help="also write the results (the JSON printed last) to this file")
    args = parser.parse_args()
    rows = []
    for name in args.cases:
        rows.append(run_case(name, args))
        print(json.dumps(rows[-1]), flush=True)
    results = {"environment": environment("cpu"), "settings": vars(args), "cases": rows, "speed": speed(args)}
    print(json.dumps(results, indent=1))
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
