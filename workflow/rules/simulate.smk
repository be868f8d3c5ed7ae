rule simulate:
    """One seeded shard of a split's simulations (all rows; invalid ones dropped at merge)."""
    output:
        simulations=temp("results/{analysis}/simulations/{split}/shard_{shard}.npz"),
    log:
        "results/{analysis}/logs/simulate/{split}_{shard}.log",
    benchmark:
        "results/{analysis}/benchmarks/simulate/{split}_{shard}.tsv"
    retries: config["simulate_retries"]
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        analysis=ANALYSIS,
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
    conda:
        "../../envs/sbi.yaml"
    params:
        analysis=ANALYSIS,
    script:
        "../scripts/merge_simulations.py"


rule observe:
    """One observation: read from its file or simulated at its true parameters."""
    output:
        observation="results/{analysis}/observations/{obs}.npz",
    log:
        "results/{analysis}/logs/observe/{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/observe/{obs}.tsv"
    conda:
        "../../envs/sbi.yaml"
    params:
        analysis=ANALYSIS,
    script:
        "../scripts/observe.py"
