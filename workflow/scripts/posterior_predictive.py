from sbi_core.logs import log_to

log_to(snakemake.log[0])
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
