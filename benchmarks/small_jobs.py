"""Wall and CPU seconds of the workflow's small jobs: observe, the pair plot, sampling one observation.

Such jobs are mostly Python start-up (imports), so they are timed as Snakemake runs them: each
target is forced (`snakemake -f`, alone, one core) and its seconds read from the rule's
benchmark file. The analysis must have run once in `--directory` (its upstream files exist);
`--repo` picks the checkout whose Snakefile and `sbi_core` the jobs use, so one results folder
serves two checkouts, before and after a change:

    .venv/bin/python benchmarks/small_jobs.py --directory /tmp/run                    # this checkout
    .venv/bin/python benchmarks/small_jobs.py --directory /tmp/run --repo /tmp/before

Prints, per job, the median over `--repeats` of the wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
from pathlib import Path

ANALYSIS, OBSERVATION = "gaussian_linear", "obs_1"
JOBS = {  # job label -> (target, benchmark file), under results/<analysis>/
    "observe": ("observations/{obs}.npz", "benchmarks/observe/{obs}.tsv"),
    "plot_posterior (nre)": ("diagnostics/nre/pair_{obs}.png", "benchmarks/plot_posterior/nre_{obs}.tsv"),
    "sample (nre)": ("posteriors/nre/{obs}.nc", "benchmarks/sample/nre_{obs}.tsv"),
    "sample (npe)": ("posteriors/npe/{obs}.nc", "benchmarks/sample/npe_{obs}.tsv"),
    "sample (nle)": ("posteriors/nle/{obs}.nc", "benchmarks/sample/nle_{obs}.tsv"),
}


def _seconds(benchmark: Path) -> tuple[float, float]:
    with benchmark.open() as handle:
        row = list(csv.DictReader(handle, delimiter="\t"))[-1]
    return float(row["s"]), float(row["cpu_time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", required=True, help="where the analysis ran (holds results/)")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]), help="the checkout to time")
    parser.add_argument("--config", default="config/config.yaml", help="relative to --repo")
    parser.add_argument("--analysis", default=ANALYSIS)
    parser.add_argument("--observation", default=OBSERVATION)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repo, results = Path(args.repo), Path(args.directory) / "results" / args.analysis
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
                 "--configfile", str(repo / args.config), "--directory", args.directory, "--cores", "1",
                 "--rerun-triggers", "mtime", "--quiet"]
    print(f"{repo}, {args.analysis} {args.observation}: median of {args.repeats} (wall s / CPU s)")
    for label, (target, benchmark) in JOBS.items():
        target, benchmark = (results / path.format(obs=args.observation) for path in (target, benchmark))
        runs = []
        for _ in range(args.repeats):
            subprocess.run([*snakemake, "-f", str(target.relative_to(args.directory))], check=True, capture_output=True)
            runs.append(_seconds(benchmark))
        wall, cpu = (statistics.median(values) for values in zip(*runs))
        print(f"  {label:24s} {wall:5.2f} / {cpu:5.2f}")


if __name__ == "__main__":
    main()
