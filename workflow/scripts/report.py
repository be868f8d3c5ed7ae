from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import report

report(
    task_name=snakemake.params.task_name,
    name=snakemake.wildcards.analysis,
    seed=snakemake.params.seed,
    simulation_metadata=list(snakemake.input.simulation_metadata),
    estimator_metadata=list(snakemake.input.estimator_metadata),
    calibrations=list(snakemake.input.calibrations),
    c2st=list(snakemake.input.c2st),
    predictive_checks=list(snakemake.input.predictive_checks),
    limits=list(snakemake.input.limits),
    plots=list(snakemake.input.plots),
    summary=snakemake.output.summary,
    html_report=snakemake.output.html,
    unfolding_metrics=list(snakemake.input.unfolding_metrics),
    unfolding_closure=list(snakemake.input.unfolding_closure),
    unfolding_ibu=list(snakemake.input.unfolding_ibu),
    unfolding_plots=list(snakemake.input.unfolding_plots),
    design_best=list(snakemake.input.design_best),
    design_plots=list(snakemake.input.design_plots),
)
