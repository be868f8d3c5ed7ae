from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import report

report(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    list(snakemake.input.simulation_metadata),
    list(snakemake.input.estimator_metadata),
    list(snakemake.input.calibrations),
    list(snakemake.input.predictive_checks),
    list(snakemake.input.limits),
    list(snakemake.input.plots),
    snakemake.output.summary,
    snakemake.output.html,
)
