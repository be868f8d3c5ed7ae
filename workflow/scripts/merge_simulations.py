from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import collect

collect(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.split,
    list(snakemake.input.sources),
    snakemake.output.simulations,
    snakemake.output.metadata,
)
