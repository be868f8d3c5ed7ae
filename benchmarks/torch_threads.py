"""How many torch threads a workflow job should use: training time of the default estimators
(the embedded default's gaussian_linear block, 10^4 simulations) with one torch thread, with two,
and as two one-thread processes at once (what two one-thread jobs do on a 2-core machine).

    .venv/bin/python benchmarks/torch_threads.py --epochs 3

Prints, per method, the seconds of one training run in each setting. The rules' `threads` follow
from it (benchmarks/RESULTS.md): a job that takes two cores for a network this small is slower
than one that takes one, and it keeps a second job from running.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time

METHODS = ("npe", "nle", "nre")


def _train_seconds(method: str, epochs: int) -> float:
    """One training run of `method` at the embedded default's settings, `epochs` epochs, in this process."""
    import torch

    from sbi_core.estimators import train_estimator
    from sbi_core.tasks import BUILTIN_TASKS

    task = BUILTIN_TASKS["gaussian_linear"]()
    torch.manual_seed(0)
    theta = task.prior.sample((10_000,))
    x = task.simulate(theta)
    training = {"flow": "zuko_maf", "hidden_features": 50, "num_transforms": 5, "num_bins": 8, "batch_size": 200,
                "learning_rate": 5e-4, "max_epochs": epochs, "patience": epochs + 1, "validation_fraction": 0.1,
                "num_blocks": 2, "num_atoms": 10}
    start = time.perf_counter()
    train_estimator(method, theta, x, task.prior, training)
    return time.perf_counter() - start


def _start_run(method: str, epochs: int, threads: int) -> subprocess.Popen:
    """One training run in a fresh process on `threads` torch threads; it prints its seconds."""
    code = (f"import torch; torch.set_num_threads({threads}); import sys; sys.path.insert(0, 'benchmarks'); "
            f"from torch_threads import _train_seconds; print('seconds=', _train_seconds({method!r}, {epochs}))")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"})


def _seconds(processes: list[subprocess.Popen]) -> list[float]:
    outputs = [process.communicate()[0] for process in processes]  # sbi's progress shares stdout
    return [float(re.search(r"seconds= (\S+)", output).group(1)) for output in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    rows = {}
    for method in METHODS:
        one = _seconds([_start_run(method, args.epochs, 1)])[0]
        two = _seconds([_start_run(method, args.epochs, 2)])[0]
        pair = _seconds([_start_run(method, args.epochs, 1), _start_run(method, args.epochs, 1)])
        rows[method] = {"one_thread_s": round(one, 2), "two_threads_s": round(two, 2),
                        "two_one_thread_processes_s": [round(s, 2) for s in pair]}
        print(f"{method}: 1 thread {one:.1f} s; 2 threads {two:.1f} s; two 1-thread runs at once "
              f"{pair[0]:.1f} s and {pair[1]:.1f} s", flush=True)
    print(json.dumps({"epochs": args.epochs, "simulations": 10_000, "rows": rows}))


if __name__ == "__main__":
    main()
