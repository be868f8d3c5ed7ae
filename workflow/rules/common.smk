"""Helpers shared by the rules: config lookups, input functions, final targets."""

from pathlib import Path


wildcard_constraints:
    analysis=r"[A-Za-z0-9_.-]+",
    split=r"train|test",
    shard=r"\d+",
    method=r"npe|nle|nre|nre_a|nre_c|bnre",
    obs=r"[A-Za-z0-9_.-]+",


ANALYSIS = lookup(dpath="analyses/{analysis}", within=config)


def analysis_config(wildcards):
    return config["analyses"][wildcards.analysis]


def observation_names(analysis):
    return [o["name"] for o in config["analyses"][analysis]["observations"]]


def simulation_sources(wildcards):
    """Shard files to merge, or the user's simulations file."""
    simulations = analysis_config(wildcards)["simulations"]
    source = simulations[wildcards.split]
    if isinstance(source, str):
        return [source]
    return expand(
        "results/{analysis}/simulations/{split}/shard_{shard}.npz",
        analysis=wildcards.analysis,
        split=wildcards.split,
        shard=range(simulations["shards"]),
    )


def method_observation_files(wildcards):
    names = observation_names(wildcards.analysis)
    return {
        "observations": expand(
            "results/{analysis}/observations/{obs}.npz",
            analysis=wildcards.analysis,
            obs=names,
        ),
        "posteriors": expand(
            "results/{analysis}/posteriors/{method}/{obs}.nc",
            analysis=wildcards.analysis,
            method=wildcards.method,
            obs=names,
        ),
    }


def report_inputs(wildcards):
    analysis = wildcards.analysis
    methods = config["analyses"][analysis]["methods"]
    prefix = f"results/{analysis}"
    return {
        "simulation_metadata": expand(
            "{prefix}/simulations/{split}.json", prefix=prefix, split=["train", "test"]
        ),
        "estimator_metadata": expand(
            "{prefix}/estimators/{method}.json", prefix=prefix, method=methods
        ),
        "calibrations": expand(
            "{prefix}/diagnostics/{method}/calibration.json",
            prefix=prefix,
            method=methods,
        ),
        "plots": expand(
            "{prefix}/estimators/{method}_loss.png", prefix=prefix, method=methods
        )
        + expand(
            "{prefix}/diagnostics/{method}/sbc_ranks.png", prefix=prefix, method=methods
        )
        + expand(
            "{prefix}/diagnostics/{method}/pair_{obs}.png",
            prefix=prefix,
            method=methods,
            obs=observation_names(analysis),
        ),
    }


def get_final_output():
    targets = config.get("targets") or list(config["analyses"])
    unknown = sorted(set(targets) - set(config["analyses"]))
    if unknown:
        raise ValueError(
            f"targets: {unknown} are not analyses; expected names from {sorted(config['analyses'])}"
        )
    return expand(
        "results/{analysis}/{name}",
        analysis=targets,
        name=["summary.json", "report.html"],
    )
