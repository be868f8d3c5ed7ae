from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import upper_limit

upper_limit(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.input.estimator,
    list(snakemake.input.observations),
    snakemake.input.reference,
    snakemake.output.limits,
    snakemake.output.plot,
)
