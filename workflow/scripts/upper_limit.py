from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import upper_limit

upper_limit(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    upper_limit=snakemake.params.upper_limit,
    seed=snakemake.params.seed,
    estimator=snakemake.input.estimator,
    observations=list(snakemake.input.observations),
    reference=snakemake.input.reference,
    output=snakemake.output.limits,
    plot=snakemake.output.plot,
)
