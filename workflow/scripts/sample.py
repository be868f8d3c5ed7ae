from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import sample

sample(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    observation_name=snakemake.wildcards.obs,
    sampling=snakemake.params.sampling,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    estimator=snakemake.input.estimator,
    observation=snakemake.input.observation,
    output=snakemake.output.posterior,
)
