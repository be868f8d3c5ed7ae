"""The `sbi-core` command: check a config, list the built-in tasks, inspect an estimator.

The workflow itself runs through Snakemake (`make run`, or `snakemake --cores N`);
this command gives the same checks and artifact readers without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sbi_core.errors import ArtifactError, ConfigError

__all__ = ["main"]

DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `sbi-core`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="sbi-core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a config as the workflow would, before any job")
    validate.add_argument("config", nargs="?", default="config/config.yaml")
    validate.add_argument("--schema", default=str(DEFAULT_SCHEMA))

    commands.add_parser("tasks", help="list the built-in tasks")

    inspect = commands.add_parser("inspect", help="print a saved estimator's hyperparameters")
    inspect.add_argument("estimator")

    args = parser.parse_args(argv)
    try:
        return {"validate": _validate, "tasks": _tasks, "inspect": _inspect}[args.command](args)
    except (ConfigError, ArtifactError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _validate(args: argparse.Namespace) -> int:
    from sbi_core.config import load_config, validate_config

    config = validate_config(load_config(args.config), args.schema)
    for name, analysis in config["analyses"].items():
        print(f"{name}: task {analysis['task']}, methods {', '.join(analysis['methods'])}: ok")
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


if __name__ == "__main__":
    sys.exit(main())
