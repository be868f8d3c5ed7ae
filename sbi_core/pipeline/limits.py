"""Steps `pyhf_limits` and `upper_limit`: CLs upper limits on the POI of a histfactory analysis.

pyhf.infer computes the reference limit from the exact likelihood; each
likelihood-type estimator (NLE, or a ratio method) gets its own limit from its
learned log-ratio by the same asymptotic formulae, so the two stand side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sbi_core.errors import ConfigError
from sbi_core.estimators import load_estimator
from sbi_core.estimators.flows import FlowLikelihood
from sbi_core.io import provenance, read_json, write_json
from sbi_core.limits import cls_upper_limit, histfactory_asimov_prior, pyhf_upper_limit, support_bounds
from sbi_core.pipeline.observe import load_observation
from sbi_core.plots import plot_cls_scan
from sbi_core.seeding import derive_seed
from sbi_core.tasks.histfactory import HistFactoryModel, build_histfactory

__all__ = ["LIMIT_METHODS", "pyhf_limits", "upper_limit", "limit_scan"]

# Methods whose network is a log-likelihood up to a constant per x, so its profile is a likelihood ratio.
LIMIT_METHODS = ("nle", "nre", "nre_a", "nre_c", "bnre")
DEFAULT_SCAN_POINTS = 41


def _model(analysis: dict, name: str) -> tuple[HistFactoryModel, torch.distributions.Distribution, int]:
    """The batched model, its prior, and the POI's index among the inferred parameters."""
    where = f"analyses.{name}.histfactory"
    model, prior = build_histfactory(analysis["histfactory"], where)
    poi = model.pyhf_model.config.poi_name
    if poi not in model.parameter_names:
        raise ConfigError(
            f"{where}.parameters: the upper limit needs the POI {poi!r} among the inferred parameters; "
            "add it, or set upper_limit.activate: false"
        )
    return model, prior, model.parameter_names.index(poi)


def limit_scan(analysis: dict, prior: torch.distributions.Distribution, poi_index: int) -> np.ndarray:
    """The POI values scanned: ``upper_limit.scan`` ``[low, high, n]``, else the POI's prior range in 41 points."""
    scan = analysis["upper_limit"].get("scan")
    if scan is None:
        low, high = (float(bound[poi_index]) for bound in support_bounds(prior, prior.event_shape[0]))
        # A uniform prior's support excludes its upper bound; stay a hair inside it.
        scan = [low, high - 1e-5 * (high - low), DEFAULT_SCAN_POINTS]
    return np.linspace(scan[0], scan[1], int(scan[2]))


def pyhf_limits(analysis: dict, name: str, observations: list[str], output: str) -> None:
    """pyhf.infer's observed and expected CLs limits for each observation; writes JSON."""
    model, prior, poi_index = _model(analysis, name)
    scan = limit_scan(analysis, prior, poi_index)
    level = analysis["upper_limit"]["level"]
    limits = {
        Path(path).stem: pyhf_upper_limit(model, scan, data=load_observation(path)["x_o"], level=level)
        for path in observations
    }
    write_json(output, {"analysis": name, "limits": limits, "provenance": provenance(analysis, analysis["seed"])})


def upper_limit(
    analysis: dict,
    name: str,
    method: str,
    estimator: str,
    observations: list[str],
    reference: str,
    output: str,
    plot: str,
) -> None:
    """The estimator's CLs limits for each observation, beside pyhf's; writes JSON and a CLs-scan plot."""
    if method not in LIMIT_METHODS:
        raise ValueError(f"method: expected one of {LIMIT_METHODS} (a likelihood or ratio estimator), got {method!r}")
    model, prior, poi_index = _model(analysis, name)
    network, hyperparameters = load_estimator(estimator)
    if method == "nle":
        network = FlowLikelihood(network, hyperparameters["dim_theta"], tuple(hyperparameters["x_shape"]))
    main_only = analysis["histfactory"]["data"] == "main"
    asimov_prior = histfactory_asimov_prior(model, analysis["histfactory"].get("priors")) if main_only else None
    scan = limit_scan(analysis, prior, poi_index)
    pyhf = read_json(reference)["limits"]
    limits = {}
    for path in observations:
        observation = Path(path).stem
        ours = cls_upper_limit(
            network,
            prior,
            torch.as_tensor(load_observation(path)["x_o"]),
            model.expected_data,
            poi_index,
            scan,
            level=analysis["upper_limit"]["level"],
            include_prior=main_only,  # main data: the constraint terms are the prior
            asimov_prior=asimov_prior,
            seed=derive_seed(analysis["seed"], "upper_limit", method, observation),
        )
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
        {"analysis": name, "method": method, "limits": limits, "provenance": provenance(analysis, analysis["seed"])},
    )
