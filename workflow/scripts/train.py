from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import train

train(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.input.simulations,
    snakemake.output.estimator,
    snakemake.output.metadata,
    snakemake.output.history,
    snakemake.output.loss_plot,
)
