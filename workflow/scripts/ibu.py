from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import ibu

ibu(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    bins=snakemake.params.bins,
    settings=snakemake.params.ibu,
    seed=snakemake.params.seed,
    simulations=snakemake.input.simulations,
    population_file=snakemake.input.population,
    output=snakemake.output.results,
)
