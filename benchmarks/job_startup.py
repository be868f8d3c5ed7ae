"""Start-up cost of the workflow: `snakemake -n` in the main process, and the Snakefile parse
that every cluster job repeats before its script runs (`--mode subprocess --target-jobs`,
as the SLURM job step runs it), for one checkout of the repository.

Run it on two checkouts (before and after a change) in the same session to compare:

    .venv/bin/python benchmarks/job_startup.py --repeats 3                      # this checkout
    PYTHONPATH=/tmp/old .venv/bin/python benchmarks/job_startup.py --repo /tmp/old

Prints the median wall time of each in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = "observe:analysis=gaussian_linear,obs=obs_1"


def _seconds(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]), help="the checkout to measure")
    parser.add_argument("--config", default="config/config.yaml", help="relative to --repo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repo = Path(args.repo)
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
                 "--configfile", str(repo / args.config), "--cores", "1", "-n"]
    with tempfile.TemporaryDirectory() as work:
        dry_run = [_seconds(snakemake, work) for _ in range(args.repeats)]
        job = [_seconds([*snakemake, "--mode", "subprocess", "--target-jobs", JOB], work) for _ in range(args.repeats)]
    print(f"{repo} ({args.config}): snakemake -n {statistics.median(dry_run):.2f} s; "
          f"per-job Snakefile parse {statistics.median(job):.2f} s (median of {args.repeats})")


if __name__ == "__main__":
    main()
