from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import collect

collect(
    task_name=snakemake.params.task_name,
    name=snakemake.wildcards.analysis,
    split=snakemake.wildcards.split,
    source=snakemake.params.source,
    max_invalid_fraction=snakemake.params.max_invalid_fraction,
    seed=snakemake.params.seed,
    inputs=list(snakemake.input.sources),
    output=snakemake.output.simulations,
    metadata=snakemake.output.metadata,
)
