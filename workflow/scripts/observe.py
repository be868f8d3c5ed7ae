from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import observe

observe(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    observation=snakemake.params.observation,
    seed=snakemake.params.seed,
    simulations=(snakemake.input.simulations or [None])[0],
    output=snakemake.output.observation,
)
