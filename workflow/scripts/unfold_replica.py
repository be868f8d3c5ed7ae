from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import unfold_replica

unfold_replica(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    replica=int(snakemake.wildcards.replica),
    training=snakemake.params.training,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    simulations=snakemake.input.simulations,
    population_file=snakemake.input.population,
    output=snakemake.output.samples,
)
