rule train:
    """Trains one estimator (NPE or NLE) on the training split."""
    input:
        simulations="results/{analysis}/simulations/train.npz",
    output:
        estimator="results/{analysis}/estimators/{method}.pt",
        metadata="results/{analysis}/estimators/{method}.json",
        history="results/{analysis}/estimators/{method}_history.csv",
        loss_plot=report(
            "results/{analysis}/estimators/{method}_loss.png",
            caption="../report/loss.rst",
            category="Training",
        ),
    log:
        "results/{analysis}/logs/train/{method}.log",
    benchmark:
        "results/{analysis}/benchmarks/train/{method}.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        analysis=ANALYSIS,
    script:
        "../scripts/train.py"
