rule pyhf_limits:
    """pyhf.infer's CLs upper limits on the POI of a histfactory analysis, per observation."""
    input:
        observations=observation_files,
        task_files=task_files,
    output:
        limits="results/{analysis}/limits/pyhf.json",
    log:
        "results/{analysis}/logs/limits/pyhf.log",
    benchmark:
        "results/{analysis}/benchmarks/limits/pyhf.tsv"
    conda:
        "../../envs/sbi.yaml"
    params:
        task=task_keys,
        seed=SEED,
        upper_limit=lookup(dpath="analyses/{analysis}/upper_limit", within=config),
    script:
        "../scripts/pyhf_limits.py"


rule upper_limit:
    """CLs upper limits from one likelihood or ratio estimator, beside pyhf's."""
    input:
        observations=observation_files,
        estimator="results/{analysis}/estimators/{method}.pt",
        reference="results/{analysis}/limits/pyhf.json",
        task_files=task_files,
    output:
        limits="results/{analysis}/limits/{method}.json",
        plot=report(
            "results/{analysis}/limits/{method}.png",
            caption="../report/limits.rst",
            category="Upper limits",
        ),
    log:
        "results/{analysis}/logs/limits/{method}.log",
    benchmark:
        "results/{analysis}/benchmarks/limits/{method}.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        task=task_keys,
        seed=SEED,
        upper_limit=lookup(dpath="analyses/{analysis}/upper_limit", within=config),
    script:
        "../scripts/upper_limit.py"
