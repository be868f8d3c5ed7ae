"""The `sbi-core` command: check a config, list the built-in tasks, inspect an estimator, verify.

The workflow itself runs through Snakemake (`make run`, or `snakemake --cores N`);
this command gives the same checks and artifact readers without it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from sbi_core.errors import ArtifactError, ConfigError

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `sbi-core`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="sbi-core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a config as the workflow would, before any job")
    validate.add_argument("config", nargs="?", default="config/config.yaml")
    validate.add_argument("--schema", default=str(DEFAULT_SCHEMA))
    validate.add_argument(
        "--cluster", action="store_true",
        help="the jobs run on other machines (SLURM): do not require this machine to have the analyses' device",
    )

    commands.add_parser("tasks", help="list the built-in tasks")

    inspect = commands.add_parser("inspect", help="print a saved estimator's hyperparameters")
    inspect.add_argument("estimator")

    verify = commands.add_parser(
        "verify",
        help="compare reference analyses' results with their stored numbers (exit 1 if any differ)",
        description="Prints a pass/fail table per reference analysis; extra arguments after `--` go to snakemake.",
    )
    verify.add_argument("expected", nargs="+", help="config/analyses/<name>.expected.yaml files")
    verify.add_argument("--rerun", action="store_true", help="rerun each analysis from scratch first (snakemake --forceall)")
    verify.add_argument("--cores", default="all", help="snakemake --cores for --rerun (default: all)")
    verify.add_argument("--directory", default=".", help="folder holding results/ (default: the current one)")

    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.snakemake_args = argv[split + 1 :]
    if args.snakemake_args and args.command != "verify":
        parser.error(f"arguments after `--` are for `verify` only, got {args.snakemake_args}")
    try:
        return {"validate": _validate, "tasks": _tasks, "inspect": _inspect, "verify": _verify}[args.command](args)
    except (ConfigError, ArtifactError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _validate(args: argparse.Namespace) -> int:
    from sbi_core.config import load_config, validate_config

    config = validate_config(load_config(args.config), args.schema, check_device=not args.cluster)
    for name, analysis in config["analyses"].items():
        if "methods" in analysis:
            print(f"{name}: task {analysis['task']}, methods {', '.join(analysis['methods'])}: ok")
        else:
            design = analysis["design"]
            print(f"{name}: design of {design['task']}, methods {', '.join(design['methods'])}: ok")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from sbi_core.tasks import BUILTIN_TASKS

    for name, factory in BUILTIN_TASKS.items():
        task = factory()
        reference = "exact reference posterior" if task.reference_posterior else "no reference posterior"
        print(f"{name}: {task.dim_theta} parameters ({', '.join(task.parameter_names)}); {reference}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from sbi_core.io import load_state

    _, hyperparameters = load_state(args.estimator)
    print(json.dumps(hyperparameters, indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from sbi_core.io import read_json
    from sbi_core.verify import format_table, load_expected, verify_analysis, write_verification

    references = [load_expected(path) for path in args.expected]  # every file is checked before any run
    reproduced = []
    for expected in references:
        results_dir = Path(args.directory) / "results" / expected.analysis
        if args.rerun:
            command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                       "--directory", str(args.directory), "--cores", str(args.cores), "--forceall",
                       "--configfile", str(expected.config), *args.snakemake_args]
            print("rerunning:", " ".join(command), flush=True)
            if subprocess.run(command).returncode != 0:
                print(f"{expected.analysis}: the rerun failed; nothing to compare", file=sys.stderr)
                continue
        summary_path = results_dir / "summary.json"
        if not summary_path.is_file():
            print(f"{expected.analysis}: {summary_path} does not exist; run the analysis (or pass --rerun)", file=sys.stderr)
            continue
        summary = read_json(summary_path)
        results = verify_analysis(summary, expected)
        write_verification(results_dir / "verify.json", expected, summary, results)
        print(format_table(f"{expected.analysis}: {summary_path} against {expected.path}", results), flush=True)
        if all(r.passed for r in results):
            reproduced.append(expected.analysis)
    print(f"{len(reproduced)} of {len(references)} reference analyses reproduced")
    return 0 if len(reproduced) == len(references) else 1


if __name__ == "__main__":
    sys.exit(main())
