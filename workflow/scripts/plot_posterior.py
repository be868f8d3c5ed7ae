from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import plot_posterior

plot_posterior(
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    posterior=snakemake.input.posterior,
    observation=snakemake.input.observation,
    reference=snakemake.input.reference,
    output=snakemake.output.plot,
)
