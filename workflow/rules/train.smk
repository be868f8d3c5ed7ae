rule train:
    """Trains one estimator (any method of the registry) on the training split."""
    input:
        simulations="results/{analysis}/simulations/train.npz",
        task_files=task_files,
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
    priority: 2
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
        training=training_settings,
    script:
        "../scripts/train.py"
