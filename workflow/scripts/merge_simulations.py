from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import collect

collect(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.split,
    list(snakemake.input.sources),
    snakemake.output.simulations,
    snakemake.output.metadata,
)
