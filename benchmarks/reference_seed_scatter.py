"""Seed scatter of a reference analysis: where its stored numbers' tolerances come from.

Reruns a reference analysis (config/analyses/<name>.yaml) through Snakemake with
its own seed and with other seeds (each run under its own analysis name, so the
runs do not overwrite each other), then prints every number its expected file
stores, per seed, with the spread. A rerun on another machine differs from the
stored run by floating-point noise that sends training down another path, so the
seed-to-seed spread (which also redraws the observations and test simulations,
so it overstates that noise) bounds what a tolerance has to allow.

Run (from the repository root, about 4 minutes per seed on 2 cores):
    python benchmarks/reference_seed_scatter.py config/analyses/two_moons.expected.yaml \
        --seeds 2021 7 11 --out benchmarks/out/two_moons_seed_scatter.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from bench_common import environment

from sbi_core.config import load_config
from sbi_core.io import read_json, write_json
from sbi_core.verify import load_expected, verify_analysis


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("expected", help="a config/analyses/<name>.expected.yaml file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2021, 7, 11])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def run_with_seed(config: dict, analysis: str, seed: int, cores: str) -> dict:
    """Runs the analysis with `seed` as `<analysis>_seed<seed>` and returns its summary."""
    name = f"{analysis}_seed{seed}"
    settings = {**config["analyses"][analysis], "seed": seed}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"targets": [name], "analyses": {name: settings}}, f)
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", cores, "--configfile", f.name], check=True)
    Path(f.name).unlink()
    return read_json(f"results/{name}/summary.json")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    expected = load_expected(args.expected)
    config = load_config(expected.config)
    per_seed = {seed: verify_analysis(run_with_seed(config, expected.analysis, seed, args.cores), expected)
                for seed in args.seeds}
    rows = []
    for index, check in enumerate(expected.checks):
        observed = [per_seed[seed][index].observed for seed in args.seeds]
        numeric = [v for v in observed if isinstance(v, (int, float))]
        spread = float(np.ptp(numeric)) if len(numeric) == len(observed) else None
        rows.append({"metric": check["metric"], "stored": check["expected"], "tolerance": check.get("tolerance"),
                     "per_seed": dict(zip(map(str, args.seeds), observed)), "spread": spread})
        shown = "  ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in observed)
        print(f"{check['metric']:45s} {shown}  spread {spread if spread is None else f'{spread:.4f}'}"
              f"  tolerance {check.get('tolerance', 'exact')}")
    result = {"expected_file": args.expected, "seeds": args.seeds, "rows": rows, "environment": environment("cpu")}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
