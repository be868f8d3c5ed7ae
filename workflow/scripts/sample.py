from sbi_core.logs import log_to

log_to(snakemake.log[0])
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
