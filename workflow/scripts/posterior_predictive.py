from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import posterior_predictive

posterior_predictive(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.input.observation,
    snakemake.input.posterior,
    snakemake.output.result,
    snakemake.output.plot,
)
