rule diagnose:
    """SBC, expected HPD coverage and TARP on the test split, C2ST against references, for one method."""
    input:
        unpack(method_observation_files),
        estimator="results/{analysis}/estimators/{method}.pt",
        test_simulations="results/{analysis}/simulations/test.npz",
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
    conda:
        "../../envs/sbi.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        analysis=ANALYSIS,
    script:
        "../scripts/diagnose.py"


rule plot_posterior:
    """Pair plot of one posterior over its reference and true parameters."""
    input:
        posterior="results/{analysis}/posteriors/{method}/{obs}.nc",
        observation="results/{analysis}/observations/{obs}.npz",
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
    params:
        analysis=ANALYSIS,
    script:
        "../scripts/plot_posterior.py"


rule posterior_predictive:
    """Simulations at posterior samples of one observation, compared with the observation."""
    input:
        posterior="results/{analysis}/posteriors/{method}/{obs}.nc",
        observation="results/{analysis}/observations/{obs}.npz",
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
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        analysis=ANALYSIS,
    script:
        "../scripts/posterior_predictive.py"
