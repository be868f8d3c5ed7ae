from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import upper_limit

upper_limit(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.input.estimator,
    list(snakemake.input.observations),
    snakemake.input.reference,
    snakemake.output.limits,
    snakemake.output.plot,
)
