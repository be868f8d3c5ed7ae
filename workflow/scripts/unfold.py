from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import unfold

unfold(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    estimator=snakemake.input.estimator,
    population_file=snakemake.input.population,
    source=snakemake.output.source,
    history=snakemake.output.history,
    samples=snakemake.output.samples,
    bootstrap=snakemake.output.bootstrap,
    regenerated=snakemake.output.regenerated,
    metrics=snakemake.output.metrics,
)
