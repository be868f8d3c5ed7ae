"""Helpers shared by the rules: config lookups, input functions, final targets."""

from pathlib import Path

from sbi_core.pipeline.limits import LIMIT_METHODS


wildcard_constraints:
    analysis=r"[A-Za-z0-9_.-]+",
    split=r"train|test",
    shard=r"\d+",
    method=r"npe|nle|nre|nre_a|nre_c|bnre",
    obs=r"[A-Za-z0-9_.-]+",


# Light rules run on the submitting machine, not as cluster jobs.
localrules:
    all,
    merge_simulations,
    observe,
    plot_posterior,
    pyhf_limits,
    report,


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


def observation_files(wildcards):
    return expand(
        "results/{analysis}/observations/{obs}.npz",
        analysis=wildcards.analysis,
        obs=observation_names(wildcards.analysis),
    )


def method_observation_files(wildcards):
    return {
        "observations": observation_files(wildcards),
        "posteriors": expand(
            "results/{analysis}/posteriors/{method}/{obs}.nc",
            analysis=wildcards.analysis,
            method=wildcards.method,
            obs=observation_names(wildcards.analysis),
        ),
    }


def has_predictive_checks(analysis):
    """Posterior predictive checks need a simulator and a non-zero budget."""
    settings = config["analyses"][analysis]
    has_simulator = settings["task"] != "custom" or "simulator" in settings
    return has_simulator and settings["diagnostics"]["ppc_num_simulations"] > 0


def limit_methods(analysis):
    """Likelihood and ratio estimators of a histfactory analysis get CLs upper limits."""
    settings = config["analyses"][analysis]
    if settings["task"] != "histfactory" or not settings["upper_limit"]["activate"]:
        return []
    return [m for m in settings["methods"] if m in LIMIT_METHODS]


def report_inputs(wildcards):
    analysis = wildcards.analysis
    methods = config["analyses"][analysis]["methods"]
    observations = observation_names(analysis)
    prefix = f"results/{analysis}"
    checks = has_predictive_checks(analysis)
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
        "predictive_checks": expand(
            "{prefix}/diagnostics/{method}/ppc_{obs}.json",
            prefix=prefix,
            method=methods if checks else [],
            obs=observations,
        ),
        "limits": expand(
            "{prefix}/limits/{method}.json",
            prefix=prefix,
            method=limit_methods(analysis),
        ),
        "plots": expand(
            "{prefix}/estimators/{method}_loss.png", prefix=prefix, method=methods
        )
        + expand(
            "{prefix}/limits/{method}.png",
            prefix=prefix,
            method=limit_methods(analysis),
        )
        + expand(
            "{prefix}/diagnostics/{method}/{plot}.png",
            prefix=prefix,
            method=methods,
            plot=["sbc_ranks", "coverage", "tarp"],
        )
        + expand(
            "{prefix}/diagnostics/{method}/{plot}_{obs}.png",
            prefix=prefix,
            method=methods,
            plot=["pair", "ppc"] if checks else ["pair"],
            obs=observations,
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
