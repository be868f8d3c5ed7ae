"""Steps `pyhf_limits` and `upper_limit`: CLs upper limits on the POI of a histfactory analysis.

pyhf.infer computes the reference limit from the exact likelihood; each
likelihood-type estimator (NLE, or a ratio method) gets its own limit from its
learned log-ratio by the same asymptotic formulae, so the two stand side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sbi_core.errors import ConfigError
from sbi_core.estimators import LIKELIHOOD_METHODS, EnsembleEstimator, Estimator, load_estimator
from sbi_core.io import provenance, read_json, write_json
from sbi_core.limits import cls_upper_limit, histfactory_asimov_prior, pyhf_upper_limit, support_bounds
from sbi_core.pipeline.common import load_observation
from sbi_core.plots import plot_cls_scan
from sbi_core.seeding import derive_seed
from sbi_core.tasks.histfactory import HistFactoryModel, build_histfactory

__all__ = ["pyhf_limits", "upper_limit", "limit_scan"]

DEFAULT_SCAN_POINTS = 41


def _model(task: dict[str, Any], name: str) -> tuple[HistFactoryModel, torch.distributions.Distribution, int]:
    """The batched model, its prior, and the POI's index among the inferred parameters."""
    where = f"analyses.{name}.histfactory"
    model, prior = build_histfactory(task["histfactory"], where)
    poi = model.pyhf_model.config.poi_name
    if poi not in model.parameter_names:
        raise ConfigError(
            f"{where}.parameters: the upper limit needs the POI {poi!r} among the inferred parameters; "
            "add it, or set upper_limit.activate: false"
        )
    return model, prior, model.parameter_names.index(poi)


def limit_scan(upper_limit: dict[str, Any], prior: torch.distributions.Distribution, poi_index: int) -> np.ndarray:
    """The POI values scanned: ``upper_limit.scan`` ``[low, high, n]``, else the POI's prior range in 41 points."""
    scan = upper_limit.get("scan")
    if scan is None:
        low, high = (float(bound[poi_index]) for bound in support_bounds(prior, prior.event_shape[0]))
        # A uniform prior's support excludes its upper bound; stay a hair inside it.
        scan = [low, high - 1e-5 * (high - low), DEFAULT_SCAN_POINTS]
    return np.linspace(scan[0], scan[1], int(scan[2]))


def pyhf_limits(
    task: dict[str, Any], name: str, upper_limit: dict[str, Any], seed: int, observations: list[str], output: str
) -> None:
    """pyhf.infer's observed and expected CLs limits for each observation; writes JSON.

    Arguments:
        task: The analysis's task keys (:func:`~sbi_core.schema.task_settings`), with ``histfactory``.
        upper_limit: The analysis's ``upper_limit`` block (level, scan).
    """
    model, prior, poi_index = _model(task, name)
    scan = limit_scan(upper_limit, prior, poi_index)
    limits = {
        Path(path).stem: pyhf_upper_limit(model, scan, data=load_observation(path)["x_o"], level=upper_limit["level"])
        for path in observations
    }
    record = provenance({"task": task, "upper_limit": upper_limit}, seed)
    write_json(output, {"analysis": name, "limits": limits, "provenance": record})


def upper_limit(
    task: dict[str, Any],
    name: str,
    method: str,
    upper_limit: dict[str, Any],
    seed: int,
    estimator: str,
    observations: list[str],
    reference: str,
    output: str,
    plot: str,
) -> None:
    """The estimator's CLs limits for each observation, beside pyhf's; writes JSON and a CLs-scan plot."""
    if method not in LIKELIHOOD_METHODS:
        raise ValueError(f"method: expected one of {LIKELIHOOD_METHODS} (a likelihood-type estimator), got {method!r}")
    model, prior, poi_index = _model(task, name)
    trained = load_estimator(estimator, prior)
    main_only = task["histfactory"]["data"] == "main"
    asimov_prior = histfactory_asimov_prior(model, task["histfactory"].get("priors")) if main_only else None
    scan = limit_scan(upper_limit, prior, poi_index)
    pyhf = read_json(reference)["limits"]
    limits = {}
    for path in observations:
        observation = Path(path).stem
        x_o = torch.as_tensor(load_observation(path)["x_o"])

        def limit(estimator: Estimator) -> dict[str, Any]:
            return cls_upper_limit(
                estimator,
                prior,
                x_o,
                model.expected_data,
                poi_index,
                scan,
                level=upper_limit["level"],
                include_prior=main_only,  # main data: the constraint terms are the prior
                asimov_prior=asimov_prior,
                seed=derive_seed(seed, "upper_limit", method, observation),
            )

        ours = limit(trained)
        if isinstance(trained, EnsembleEstimator):  # the members' own limits: the ensemble's spread
            members = [limit(member) for member in trained.members]
            ours["members"] = {
                "observed_limits": [member["observed_limit"] for member in members],
                "expected_median_limits": [member["expected_limits"][2] for member in members],
            }
        expected = pyhf[observation]
        limits[observation] = {
            "ours": ours,
            "pyhf": expected,
            "relative_difference": {
                "observed": ours["observed_limit"] / expected["observed_limit"] - 1,
                "expected_median": ours["expected_limits"][2] / expected["expected_limits"][2] - 1,
            },
        }
    plot_cls_scan(
        {obs: (r["ours"], r["pyhf"]) for obs, r in limits.items()},
        plot,
        poi=model.parameter_names[poi_index],
        title=f"{name}: {method.upper()} vs pyhf",
    )
    write_json(
        output,
        {
            "analysis": name,
            "method": method,
            "limits": limits,
            "provenance": provenance({"task": task, "method": method, "upper_limit": upper_limit}, seed),
        },
    )
