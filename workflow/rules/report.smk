rule report:
    """summary.json with the key numbers and a self-contained HTML report."""
    input:
        unpack(report_inputs),
    output:
        summary="results/{analysis}/summary.json",
        html="results/{analysis}/report.html",
    log:
        "results/{analysis}/logs/report.log",
    benchmark:
        "results/{analysis}/benchmarks/report.tsv"
    conda:
        "../../envs/sbi.yaml"
    params:
        task_name=TASK_NAME,
        seed=SEED,
    script:
        "../scripts/report.py"
