from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import simulate

simulate(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.split,
    int(snakemake.wildcards.shard),
    snakemake.output.simulations,
)
