from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import plot_posterior

plot_posterior(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.input.observation,
    snakemake.input.posterior,
    snakemake.output.plot,
)
