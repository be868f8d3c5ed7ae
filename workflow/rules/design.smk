rule design_train:
    """One estimator trained over the whole design space: the design is part of its observation."""
    output:
        estimator="results/{analysis}/design/estimators/{method}.pt",
        history="results/{analysis}/design/estimators/{method}_history.csv",
    log:
        "results/{analysis}/logs/design/train_{method}.log",
    benchmark:
        "results/{analysis}/benchmarks/design/train_{method}.tsv"
    priority: 2
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpu_request,
    params:
        settings=design_train_settings,
        training=design_training,
        seed=SEED,
        device=DEVICE,
    script:
        "../scripts/design_train.py"


rule design:
    """EIG of candidate designs by every method, multi-start ascent, the best design re-estimated."""
    input:
        unpack(design_estimators),
    output:
        eig="results/{analysis}/design/eig.csv",
        best="results/{analysis}/design/best_design.json",
        ascent="results/{analysis}/design/ascent.npz",
        plot="results/{analysis}/design/eig.png",
    log:
        "results/{analysis}/logs/design/design.log",
    benchmark:
        "results/{analysis}/benchmarks/design/design.tsv"
    priority: 1
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpu_request,
    params:
        settings=design_settings,
        seed=SEED,
        device=DEVICE,
    script:
        "../scripts/design.py"
