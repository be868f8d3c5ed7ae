from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import c2st

c2st(
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    observation_name=snakemake.wildcards.obs,
    seed=snakemake.params.seed,
    num_samples=snakemake.params.num_samples,
    posterior=snakemake.input.posterior,
    reference=snakemake.input.reference,
    output=snakemake.output.result,
)
