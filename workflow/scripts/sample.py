from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import sample

sample(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.wildcards.obs,
    snakemake.input.estimator,
    snakemake.input.observation,
    snakemake.output.posterior,
)
