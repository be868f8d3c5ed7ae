from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import pyhf_limits

pyhf_limits(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    upper_limit=snakemake.params.upper_limit,
    seed=snakemake.params.seed,
    observations=list(snakemake.input.observations),
    output=snakemake.output.limits,
)
