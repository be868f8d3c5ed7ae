"""Benchmark: how close an NRE's CLs upper limit comes to pyhf's, over training seeds and atom counts.

On pyhf's simple model (config/workspaces/simple.json, mu and two shapesys
gammas, main data), 10,000 simulations are drawn once; NRE-B is trained with
the workflow's default settings and ``--atoms`` contrastive atoms for each seed,
and its observed and expected (median) 95% CLs limits on mu for the workspace's
data are compared with ``pyhf.infer``'s on the same scan. The exact likelihood
through the same limit code is the control (it matches pyhf to ~1e-4).

With ``--members 1 5`` each seed also trains an ensemble of 5 (the same seed: its first
member is that seed's single network), and the seed scatter of each group is printed.

Run:
    python benchmarks/histfactory_limits_seeds.py --out benchmarks/out/histfactory_limits_seeds.json
    python benchmarks/histfactory_limits_seeds.py --atoms 10 --members 1 5 --seeds 0 1 2 3 4 \
        --out benchmarks/out/histfactory_limits_ensemble.json
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from bench_common import environment

from sbi_core.config import validate_config
from sbi_core.estimators import train_estimator
from sbi_core.io import write_json
from sbi_core.limits import cls_upper_limit, histfactory_asimov_prior, pyhf_upper_limit
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks.histfactory import HistFactoryLikelihood, build_histfactory

WORKSPACE = "config/workspaces/simple.json"
SCHEMA = "workflow/schemas/config.schema.yaml"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-simulations", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--atoms", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--members", type=int, nargs="+", default=[1],
                        help="ensemble sizes to train per seed and atom count (1: one network)")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    analysis = {
        "task": "histfactory", "histfactory": {"workspace": WORKSPACE}, "simulations": {"train": 10, "test": 10},
        "methods": ["npe"], "observations": [{"name": "observed", "from_workspace": True}],  # for the defaults only
        "diagnostics": {"num_simulations": 10},
    }
    defaults = validate_config({"analyses": {"bench": analysis}}, SCHEMA, check_files=False)["analyses"]["bench"]
    model, prior = build_histfactory({"workspace": WORKSPACE}, "bench")
    x_o, scan = model.observed_data(), np.linspace(0.0, 5.0, 51)
    asimov_prior = histfactory_asimov_prior(model)
    seed_everything(0)
    theta = prior.sample((args.num_simulations,))
    x = model.simulate(theta)

    pyhf = pyhf_upper_limit(model, scan, data=x_o)
    exact = cls_upper_limit(HistFactoryLikelihood(model), prior, x_o, model.expected_data, 0, scan,
                            asimov_prior=asimov_prior)
    rows = [{"estimator": "exact likelihood", "observed": exact["observed_limit"],
             "expected_median": exact["expected_limits"][2]}]
    for atoms in args.atoms:
        for members in args.members:
            for seed in args.seeds:
                # One seed per (seed, atoms): an ensemble's first member is the single network of that seed.
                seed_everything(derive_seed(seed, "nre", atoms))
                training = {**defaults["training"], "num_atoms": atoms, "ensemble_members": members}
                estimator, history = train_estimator("nre", theta, x, prior, training)
                limit = cls_upper_limit(estimator, prior, x_o, model.expected_data, 0, scan,
                                        asimov_prior=asimov_prior, seed=seed)
                label = f"NRE-B, {atoms} atoms" + (f", ensemble of {members}" if members > 1 else "")
                rows.append({"estimator": f"{label}, seed {seed}", "group": label, "epochs": history["epochs_trained"],
                             "observed": limit["observed_limit"], "expected_median": limit["expected_limits"][2]})
                print(rows[-1], flush=True)
    for row in rows:
        row["observed_vs_pyhf"] = row["observed"] / pyhf["observed_limit"] - 1
        row["expected_vs_pyhf"] = row["expected_median"] / pyhf["expected_limits"][2] - 1
    scatter = {}
    for group in dict.fromkeys(row["group"] for row in rows if "group" in row):
        observed = [row["observed_vs_pyhf"] for row in rows if row.get("group") == group]
        expected = [row["expected_vs_pyhf"] for row in rows if row.get("group") == group]
        scatter[group] = {"observed_sd": float(np.std(observed, ddof=1)), "observed_range": float(np.ptp(observed)),
                          "expected_sd": float(np.std(expected, ddof=1)), "expected_range": float(np.ptp(expected))}
    results = {"arguments": vars(args), "pyhf": {"observed": pyhf["observed_limit"],
               "expected_median": pyhf["expected_limits"][2]}, "rows": rows, "seed_scatter": scatter,
               "environment": environment("cpu")}
    write_json(args.out, results)
    print(f"\npyhf: observed {pyhf['observed_limit']:.3f}, expected median {pyhf['expected_limits'][2]:.3f}")
    print(f"{'estimator':<28} {'observed':>9} {'vs pyhf':>8} {'expected':>9} {'vs pyhf':>8}")
    for row in rows:
        print(f"{row['estimator']:<28} {row['observed']:>9.3f} {row['observed_vs_pyhf']:>+8.1%} "
              f"{row['expected_median']:>9.3f} {row['expected_vs_pyhf']:>+8.1%}")
    for group, spread in scatter.items():
        print(f"{group}: seed scatter (sd / range) observed {spread['observed_sd']:.1%} / {spread['observed_range']:.1%}, "
              f"expected {spread['expected_sd']:.1%} / {spread['expected_range']:.1%}")
    return results


if __name__ == "__main__":
    main()
