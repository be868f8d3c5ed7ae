rule sample:
    """Posterior samples for one (method, observation) as ArviZ InferenceData."""
    input:
        estimator="results/{analysis}/estimators/{method}.pt",
        observation="results/{analysis}/observations/{obs}.npz",
    output:
        posterior="results/{analysis}/posteriors/{method}/{obs}.nc",
    log:
        "results/{analysis}/logs/sample/{method}_{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/sample/{method}_{obs}.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 4
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        analysis=ANALYSIS,
    script:
        "../scripts/sample.py"
