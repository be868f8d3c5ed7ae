from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import pyhf_limits

pyhf_limits(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    list(snakemake.input.observations),
    snakemake.output.limits,
)
