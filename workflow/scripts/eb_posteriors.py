from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import eb_posteriors

eb_posteriors(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    count=snakemake.params.num_observations,
    num_samples=snakemake.params.num_samples,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    estimator=snakemake.input.estimator,
    source=snakemake.input.source,
    population_file=snakemake.input.population,
    output=snakemake.output.posteriors,
)
