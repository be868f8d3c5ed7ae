rule diagnose:
    """SBC, expected HPD coverage and TARP of one method on the held-out test split."""
    input:
        estimator="results/{analysis}/estimators/{method}.pt",
        test_simulations="results/{analysis}/simulations/test.npz",
        tarp_references=tarp_reference_file,
        task_files=task_files,
    output:
        calibration="results/{analysis}/diagnostics/{method}/calibration.json",
        ranks="results/{analysis}/diagnostics/{method}/sbc_ranks.npz",
        rank_plot=report(
            "results/{analysis}/diagnostics/{method}/sbc_ranks.png",
            caption="../report/sbc.rst",
            category="Calibration",
        ),
        coverage_plot=report(
            "results/{analysis}/diagnostics/{method}/coverage.png",
            caption="../report/coverage.rst",
            category="Calibration",
        ),
        tarp_plot=report(
            "results/{analysis}/diagnostics/{method}/tarp.png",
            caption="../report/tarp.rst",
            category="Calibration",
        ),
    log:
        "results/{analysis}/logs/diagnose/{method}.log",
    benchmark:
        "results/{analysis}/benchmarks/diagnose/{method}.tsv"
    priority: 1
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpu_request,
    params:
        task=task_keys,
        seed=SEED,
        device=DEVICE,
        sampling=sampling_settings,
        num_simulations=lookup(
            dpath="analyses/{analysis}/diagnostics/num_simulations", within=config
        ),
        num_samples=lookup(
            dpath="analyses/{analysis}/diagnostics/num_samples", within=config
        ),
        confidence=lookup(
            dpath="analyses/{analysis}/diagnostics/confidence", within=config
        ),
        coverage_num_levels=lookup(
            dpath="analyses/{analysis}/diagnostics/coverage_num_levels", within=config
        ),
        tarp=lookup(dpath="analyses/{analysis}/diagnostics/tarp", within=config),
    script:
        "../scripts/diagnose.py"


rule c2st:
    """Classifier two-sample test of one posterior against its reference samples, where they exist."""
    input:
        posterior="results/{analysis}/posteriors/{method}/{obs}.nc",
        reference="results/{analysis}/references/{obs}.npz",
    output:
        result="results/{analysis}/diagnostics/{method}/c2st_{obs}.json",
    log:
        "results/{analysis}/logs/c2st/{method}_{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/c2st/{method}_{obs}.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        seed=SEED,
        num_samples=lookup(
            dpath="analyses/{analysis}/diagnostics/c2st_num_samples", within=config
        ),
    script:
        "../scripts/c2st.py"


rule plot_posterior:
    """Pair plot of one posterior over its reference and true parameters."""
    input:
        posterior="results/{analysis}/posteriors/{method}/{obs}.nc",
        observation="results/{analysis}/observations/{obs}.npz",
        reference="results/{analysis}/references/{obs}.npz",
    output:
        plot=report(
            "results/{analysis}/diagnostics/{method}/pair_{obs}.png",
            caption="../report/pair.rst",
            category="Posteriors",
        ),
    log:
        "results/{analysis}/logs/plot_posterior/{method}_{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/plot_posterior/{method}_{obs}.tsv"
    conda:
        "../../envs/sbi.yaml"
    script:
        "../scripts/plot_posterior.py"


rule posterior_predictive:
    """Simulations at posterior samples of one observation, compared with the observation."""
    input:
        posterior="results/{analysis}/posteriors/{method}/{obs}.nc",
        observation="results/{analysis}/observations/{obs}.npz",
        task_files=task_files,
    output:
        result="results/{analysis}/diagnostics/{method}/ppc_{obs}.json",
        plot=report(
            "results/{analysis}/diagnostics/{method}/ppc_{obs}.png",
            caption="../report/ppc.rst",
            category="Posterior predictive checks",
        ),
    log:
        "results/{analysis}/logs/posterior_predictive/{method}_{obs}.log",
    benchmark:
        "results/{analysis}/benchmarks/posterior_predictive/{method}_{obs}.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        task=task_keys,
        seed=SEED,
        num_simulations=lookup(
            dpath="analyses/{analysis}/diagnostics/ppc_num_simulations", within=config
        ),
    script:
        "../scripts/posterior_predictive.py"
