from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import simulate

simulate(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.split,
    int(snakemake.wildcards.shard),
    snakemake.output.simulations,
)
