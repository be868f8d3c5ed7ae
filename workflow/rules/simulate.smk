rule simulate:
    """One seeded shard of a split's simulations (all rows; invalid ones dropped at merge)."""
    input:
        task_files=task_files,
    output:
        simulations=temp("results/{analysis}/simulations/{split}/shard_{shard}.npz"),
    log:
        "results/{analysis}/logs/simulate/{split}_{shard}.log",
    benchmark:
        "results/{analysis}/benchmarks/simulate/{split}_{shard}.tsv"
    priority: 3
    retries: config["simulate_retries"]
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        task=task_keys,
        seed=SEED,
        num_simulations=lookup(
            dpath="analyses/{analysis}/simulations/{split}", within=config
        ),
        shards=lookup(dpath="analyses/{analysis}/simulations/shards", within=config),
        time_limit=lookup(
            dpath="analyses/{analysis}/simulations/time_limit", within=config
        ),
    script:
        "../scripts/simulate.py"


rule merge_simulations:
    """Merges shards (or reads the user's file), drops and counts NaN/inf rows."""
    input:
        sources=simulation_sources,
    output:
        simulations="results/{analysis}/simulations/{split}.npz",
        metadata="results/{analysis}/simulations/{split}.json",
    log:
        "results/{analysis}/logs/merge_simulations/{split}.log",
    benchmark:
        "results/{analysis}/benchmarks/merge_simulations/{split}.tsv"
    priority: 3
    conda:
        "../../envs/sbi.yaml"
    params:
        task_name=TASK_NAME,
        seed=SEED,
        source=simulation_source,
        max_invalid_fraction=lookup(
            dpath="analyses/{analysis}/simulations/max_invalid_fraction",
            within=config,
        ),
    script:
        "../scripts/merge_simulations.py"


rule observe:
    """One observation: read from its file, the workspace, or simulated at its true parameters."""
    input:
        data=observation_data_file,
        simulations=observation_shape_source,
        task_files=task_files,
    output:
        observation="results/{analysis}/observations/{obs}.npz",
    log:
        "results/{analysis}/logs/observe/{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/observe/{obs}.tsv"
    conda:
        "../../envs/sbi.yaml"
    params:
        task=task_keys,
        seed=SEED,
        observation=observation_settings,
    script:
        "../scripts/observe.py"


rule reference_posterior:
    """Reference posterior samples of one observation (the user's file, or the exact posterior)."""
    input:
        observation="results/{analysis}/observations/{obs}.npz",
        samples=reference_samples_file,
        task_files=task_files,
    output:
        reference="results/{analysis}/references/{obs}.npz",
    log:
        "results/{analysis}/logs/reference_posterior/{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/reference_posterior/{obs}.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        task=task_keys,
        seed=SEED,
        num_samples=lookup(
            dpath="analyses/{analysis}/diagnostics/c2st_num_samples", within=config
        ),
    script:
        "../scripts/reference_posterior.py"
