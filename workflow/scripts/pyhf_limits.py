from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import pyhf_limits

pyhf_limits(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    list(snakemake.input.observations),
    snakemake.output.limits,
)
