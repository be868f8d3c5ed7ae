from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import simulate

simulate(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    split=snakemake.wildcards.split,
    num_simulations=snakemake.params.num_simulations,
    shards=snakemake.params.shards,
    shard=int(snakemake.wildcards.shard),
    seed=snakemake.params.seed,
    time_limit=snakemake.params.time_limit,
    output=snakemake.output.simulations,
)
