"""Benchmark: every method at its default settings on the sbibm tasks, C2ST against the published numbers.

What a new user gets: for each task, ``--simulations`` (10^4) prior draws and their
simulations, NPE, NLE and NRE-B trained with the config schema's defaults (the
``training`` and ``sampling`` blocks filled in by ``workflow/schemas/config.schema.yaml``,
nothing set), ``--samples`` posterior samples for each of sbibm's ten fixed
observations (``benchmarks/data/sbibm_observations.json``, the ones the published
numbers were measured on; sbibm chose them to avoid extremely spiked slcp posteriors)
or, with ``--observation-set prior``, ``--observations`` observations simulated from
prior draws with the seed, and the C2ST of each against the task's
reference posterior (exact for gaussian_linear and two_moons; for slcp exact up to
importance-sampling error, :func:`sbi_core.tasks.slcp._reference_posterior`) by the
published protocol (our torch C2ST, :func:`sbi_core.diagnostics.c2st_many`: sbibm's
MLP, 5 folds, ``--samples`` + ``--samples``). Reported per (task, method): mean C2ST
± its standard error over the observations, each observation's, the training epochs
and the seconds of training, sampling and C2ST, beside Lueckmann et al. (2021)'s
numbers at 10^4 simulations for the single-round method (the floor) and its
sequential version (the target). The report is rewritten after each (task, method),
so a long run leaves what it finished.

Run (one thread; about 2 h for all three tasks on the 2-core CPU, slcp's C2ST the most):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/defaults_c2st.py --out benchmarks/out/defaults_c2st.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import mean_and_sem, write_report  # noqa: E402

from sbi_core.diagnostics import c2st_many  # noqa: E402
from sbi_core.estimators import train_estimator  # noqa: E402
from sbi_core.schema import check_schema  # noqa: E402
from sbi_core.tasks import BUILTIN_TASKS  # noqa: E402

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
SBIBM_OBSERVATIONS = Path(__file__).resolve().parent / "data" / "sbibm_observations.json"
# Lueckmann et al. (2021), Fig. 2 / sbibm, mean C2ST over 10 observations at 10^4 simulations:
# (NPE, NLE, NRE) single-round and (SNPE, SNLE, SNRE) sequential.
PUBLISHED = {
    "gaussian_linear": {"npe": (0.552, 0.544), "nle": (0.555, 0.548), "nre": (0.560, 0.536)},
    "two_moons": {"npe": (0.606, 0.554), "nle": (0.713, 0.571), "nre": (0.761, 0.582)},
    "slcp": {"npe": (0.901, 0.845), "nle": (0.771, 0.713), "nre": (0.947, 0.917)},
}


def default_settings(task: str, dim_theta: int) -> dict[str, Any]:
    """The ``training`` and ``sampling`` blocks a config that sets neither gets from the schema."""
    analysis = {"task": task, "seed": 1, "simulations": {"train": 10, "test": 10}, "methods": ["npe"],
                "observations": [{"name": "o", "theta": [0.0] * dim_theta}]}
    filled = check_schema({"analyses": {"defaults": analysis}}, SCHEMA)["analyses"]["defaults"]
    return {"training": filled["training"], "sampling": filled["sampling"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(PUBLISHED), choices=list(PUBLISHED))
    parser.add_argument("--methods", nargs="+", default=["npe", "nle", "nre"], choices=["npe", "nle", "nre"])
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--observation-set", choices=["sbibm", "prior"], default="sbibm",
                        help="sbibm's ten published observations, or --observations drawn from the prior")
    parser.add_argument("--observations", type=int, default=10, help="with --observation-set prior")
    parser.add_argument("--samples", type=int, default=10_000, help="posterior and reference samples per observation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="training or sampling keys changed from the defaults (YAML values), to try another default")
    parser.add_argument("--out", help="JSON file for the report (also printed)")
    args = parser.parse_args()
    changes = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}

    rows: dict[str, Any] = {}
    for name in args.tasks:
        task = BUILTIN_TASKS[name]()
        settings = default_settings(name, len(task.parameter_names))
        for key, value in changes.items():
            block = "sampling" if key in settings["sampling"] or key in ("sampler", "num_proposals", "thin") else "training"
            settings[block][key] = value
        torch.manual_seed(args.seed)
        theta = task.prior.sample((args.simulations,))
        x = task.simulate(theta)
        x_o = task.simulate(task.prior.sample((args.observations,)))  # drawn either way: the same networks follow
        if args.observation_set == "sbibm":
            x_o = torch.tensor(json.loads(SBIBM_OBSERVATIONS.read_text())["tasks"][name]["observations"])
        start = time.perf_counter()
        reference = torch.stack([task.reference_posterior(x_o[i : i + 1], args.samples) for i in range(len(x_o))])
        print(f"{name}: reference samples in {time.perf_counter() - start:.0f} s", flush=True)
        rows[name] = {"settings": settings}
        for method in args.methods:
            torch.manual_seed(args.seed + 1)
            start = time.perf_counter()
            estimator, history = train_estimator(method, theta, x, task.prior, settings["training"])
            trained = time.perf_counter() - start
            samples = estimator.posterior(settings["sampling"]).sample(x_o, args.samples)
            sampled = time.perf_counter() - start - trained
            accuracy = [test.accuracy for test in c2st_many(reference, samples, seed=1)]
            mean, sem = mean_and_sem(accuracy)
            floor, target = PUBLISHED[name][method]
            rows[name][method] = {
                "c2st_mean": mean, "c2st_sem": sem, "c2st": accuracy, "published": floor,
                "published_sequential": target, "epochs": history["epochs_trained"], "train_seconds": trained,
                "sample_seconds": sampled, "c2st_seconds": time.perf_counter() - start - trained - sampled,
            }
            print(f"{name} {method}: C2ST {mean:.3f} ± {sem:.3f} (published {floor}, sequential {target}); "
                  f"{history['epochs_trained']} epochs, train {trained:.0f} s, sample {sampled:.0f} s, "
                  f"C2ST {rows[name][method]['c2st_seconds']:.0f} s", flush=True)
            write_report(rows, vars(args), "cpu", args.out)


if __name__ == "__main__":
    main()
