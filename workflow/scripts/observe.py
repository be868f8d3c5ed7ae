from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import observe

observe(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.obs,
    snakemake.output.observation,
)
