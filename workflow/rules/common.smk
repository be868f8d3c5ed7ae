"""Helpers shared by the rules: config lookups, input functions, final targets.

Each rule's params are the config keys that rule reads, one per param, so that
Snakemake reruns exactly the jobs a config change touches.
"""

from sbi_core.estimators.registry import LIKELIHOOD_METHODS, METHODS, method_spec
from sbi_core.schema import is_design_only, task_settings


wildcard_constraints:
    analysis=r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    split=r"train|test",
    shard=r"\d+",
    method="|".join(METHODS),
    obs=r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    replica=r"\d+",


# Every rule asks for one thread (README, "Run on SLURM"), so `--cores N` runs N jobs at once; when
# more are ready than cores, the higher `priority` runs first: the jobs that head long chains
# (simulations 3; training and unfolding fits 2; sampling, calibration, design 1) before plots and
# checks, so that the slowest chain starts early (in `make run` the unfolding chain started last
# without them).


# Light rules run on the submitting machine, not as cluster jobs.
localrules:
    all,
    merge_simulations,
    observe,
    plot_posterior,
    pyhf_limits,
    report,


SEED = lookup(dpath="analyses/{analysis}/seed", within=config)
DEVICE = lookup(dpath="analyses/{analysis}/device", within=config)


def TASK_NAME(wildcards):
    """The analysis's task; a design-only analysis is named by the task it designs."""
    analysis = analysis_config(wildcards)
    return analysis.get("task") or f"design of {analysis['design']['task']}"


def analysis_config(wildcards):
    return config["analyses"][wildcards.analysis]


def task_keys(wildcards):
    """The keys that define the task (prior, simulator, parameters): every step reads them."""
    return task_settings(analysis_config(wildcards))


def task_files(wildcards):
    """Files the task is built from (a HistFactory workspace), inputs of every rule that builds it."""
    histfactory = analysis_config(wildcards).get("histfactory")
    return [histfactory["workspace"]] if histfactory else []


def training_settings(wildcards):
    """The training keys this method reads (registry), so another method's key does not retrain it."""
    training = analysis_config(wildcards)["training"]
    keys = method_spec(wildcards.method).training_keys
    return {key: training[key] for key in keys if key in training}


def sampling_settings(wildcards):
    """The sampling keys this method reads (registry): NPE samples its flow, the others our samplers."""
    sampling = analysis_config(wildcards)["sampling"]
    keys = method_spec(wildcards.method).sampling_keys
    return {key: sampling[key] for key in keys if key in sampling}


def observation_names(analysis):
    return [o["name"] for o in config["analyses"][analysis]["observations"]]


def observation_entry(wildcards):
    return next(
        o
        for o in analysis_config(wildcards)["observations"]
        if o["name"] == wildcards.obs
    )


def observation_settings(wildcards):
    """How the observation is made; its reference samples are another rule's business."""
    entry = observation_entry(wildcards)
    return {key: value for key, value in entry.items() if key != "reference_samples"}


def observation_data_file(wildcards):
    entry = observation_entry(wildcards)
    return [entry["file"]] if "file" in entry else []


def observation_shape_source(wildcards):
    """An observation file must have the shape of x of the training simulations."""
    entry = observation_entry(wildcards)
    if "file" not in entry:
        return []
    return [f"results/{wildcards.analysis}/simulations/train.npz"]


def reference_samples_file(wildcards):
    entry = observation_entry(wildcards)
    return [entry["reference_samples"]] if "reference_samples" in entry else []


def tarp_reference_file(wildcards):
    references = analysis_config(wildcards)["diagnostics"]["tarp"]["references"]
    return [] if references in ("uniform", "prior") else [references]


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


def simulation_source(wildcards):
    return analysis_config(wildcards)["simulations"][wildcards.split]


def observation_files(wildcards):
    return expand(
        "results/{analysis}/observations/{obs}.npz",
        analysis=wildcards.analysis,
        obs=observation_names(wildcards.analysis),
    )


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
    return [m for m in settings["methods"] if m in LIKELIHOOD_METHODS]


def gpu_request(wildcards):
    """One GPU for the jobs of an analysis with `device: cuda`, none otherwise (SLURM's --gpus)."""
    return 1 if analysis_config(wildcards)["device"] == "cuda" else 0


# ------------------------------------------------------------------ unfolding

UNFOLD_FIT_KEYS = (
    "neb_protocol_auc",
    "source_flow",
    "fit",
    "num_bootstrap",
    "bootstrap_steps",
    "bootstrap_start",
    "num_samples",
    "c2st_num_samples",
)


def unfolding_config(analysis):
    return config["analyses"][analysis]["unfolding"]


def unfolding_methods(analysis):
    """The estimators an active unfolding fits with (default every method of the analysis)."""
    unfolding = unfolding_config(analysis)
    if not unfolding["activate"]:
        return []
    return unfolding.get("methods") or config["analyses"][analysis]["methods"]


def unfold_fit_settings(wildcards):
    """The unfolding keys a fit reads: a binning or IBU setting does not refit."""
    unfolding = unfolding_config(wildcards.analysis)
    return {key: unfolding[key] for key in UNFOLD_FIT_KEYS}


def population_data_file(wildcards):
    population = unfolding_config(wildcards.analysis)["population"]
    return [population["file"]] if "file" in population else []


def ibu_results(analysis):
    active = unfolding_config(analysis)["ibu"]["activate"]
    return [f"results/{analysis}/unfolding/ibu/results.json"] if active else []


def unfold_spectra_inputs(wildcards):
    prefix = f"results/{wildcards.analysis}/unfolding"
    replicas = unfolding_config(wildcards.analysis)["estimator_replicas"]
    return {
        "samples": f"{prefix}/{wildcards.method}/unfolded.nc",
        "bootstrap": f"{prefix}/{wildcards.method}/bootstrap.npz",
        "regenerated": f"{prefix}/{wildcards.method}/regenerated.npz",
        "population": f"{prefix}/population.npz",
        "replicas": expand(
            "{prefix}/{method}/replicas/replica_{replica}.npz",
            prefix=prefix,
            method=wildcards.method,
            replica=range(replicas),
        ),
        "ibu": ibu_results(wildcards.analysis),
        "task_files": task_files(wildcards),
    }


def unfolding_report_inputs(analysis):
    """What the report reads and shows of the unfolding stage (nothing when it is off)."""
    methods = unfolding_methods(analysis)
    prefix = f"results/{analysis}/unfolding"
    posteriors = unfolding_config(analysis)["posteriors"] if methods else 0
    return {
        "unfolding_metrics": expand(
            "{prefix}/{method}/metrics.json", prefix=prefix, method=methods
        ),
        "unfolding_closure": expand(
            "{prefix}/{method}/closure.json", prefix=prefix, method=methods
        ),
        "unfolding_ibu": ibu_results(analysis) if methods else [],
        "unfolding_plots": expand(
            "{prefix}/{method}/{plot}.png",
            prefix=prefix,
            method=methods,
            plot=["spectra", "pair", "regenerated"],
        ),
        "unfolding_posteriors": expand(
            "{prefix}/{method}/posteriors.nc",
            prefix=prefix,
            method=methods if posteriors else [],
        ),
    }


# ------------------------------------------------------------------ experimental design

# As sbi_core.design.tasks.LIKELIHOOD_METHODS, said again: importing that module here would load
# torch in every job's parse of the Snakefile.
DESIGN_LIKELIHOOD_METHODS = ("spce", "snmc")
# The design keys an estimator's training reads: a candidate or optimiser setting does not retrain.
DESIGN_TRAIN_KEYS = (
    "task",
    "simulator",
    "prior",
    "parameter_names",
    "differentiable",
    "num_experiments",
    "space",
    "simulations",
    "training",
)


def design_config(analysis):
    return config["analyses"][analysis]["design"]


def design_estimator_methods(analysis):
    """The design block's trained methods (spce and snmc need no training)."""
    design = design_config(analysis)
    return [m for m in design["methods"] if m not in DESIGN_LIKELIHOOD_METHODS]


def design_settings(wildcards):
    return design_config(wildcards.analysis)


def design_train_settings(wildcards):
    design = design_config(wildcards.analysis)
    return {key: design[key] for key in DESIGN_TRAIN_KEYS if key in design}


def design_training(wildcards):
    """The analysis's training keys the design method reads, with the design block's overrides."""
    training = config["analyses"][wildcards.analysis]["training"]
    keys = method_spec(wildcards.method).training_keys
    return {key: training[key] for key in keys if key in training}


def design_estimators(wildcards):
    return {
        method: f"results/{wildcards.analysis}/design/estimators/{method}.pt"
        for method in design_estimator_methods(wildcards.analysis)
    }


def design_report_inputs(analysis):
    """What the report reads and shows of the design stage (nothing when it is off)."""
    if not design_config(analysis)["activate"]:
        return {"design_best": [], "design_plots": []}
    prefix = f"results/{analysis}/design"
    return {
        "design_best": [f"{prefix}/best_design.json"],
        "design_plots": [f"{prefix}/eig.png"],
    }


def report_inputs(wildcards):
    analysis = wildcards.analysis
    if is_design_only(config["analyses"][analysis]):
        inference = (
            "simulation_metadata",
            "estimator_metadata",
            "calibrations",
            "c2st",
        )
        inference += ("predictive_checks", "limits", "plots")
        return {
            **dict.fromkeys(inference, []),
            **unfolding_report_inputs(analysis),
            **design_report_inputs(analysis),
        }
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
        "c2st": expand(
            "{prefix}/diagnostics/{method}/c2st_{obs}.json",
            prefix=prefix,
            method=methods,
            obs=observations,
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
        **unfolding_report_inputs(analysis),
        **design_report_inputs(analysis),
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
