from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import reference_posterior

reference_posterior(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    observation_name=snakemake.wildcards.obs,
    seed=snakemake.params.seed,
    num_samples=snakemake.params.num_samples,
    observation=snakemake.input.observation,
    samples_file=snakemake.input.samples[0] if snakemake.input.samples else None,
    output=snakemake.output.reference,
)
