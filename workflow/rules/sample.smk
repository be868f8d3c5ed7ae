rule sample:
    """Posterior samples for one (method, observation) as ArviZ InferenceData."""
    input:
        estimator="results/{analysis}/estimators/{method}.pt",
        observation="results/{analysis}/observations/{obs}.npz",
        task_files=task_files,
    output:
        posterior="results/{analysis}/posteriors/{method}/{obs}.nc",
    log:
        "results/{analysis}/logs/sample/{method}_{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/sample/{method}_{obs}.tsv"
    priority: 1
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=gpu_request,
    params:
        task=task_keys,
        seed=SEED,
        device=DEVICE,
        sampling=sampling_settings,
    script:
        "../scripts/sample.py"
