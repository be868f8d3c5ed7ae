from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import posterior_predictive

posterior_predictive(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    seed=snakemake.params.seed,
    num_simulations=snakemake.params.num_simulations,
    observation=snakemake.input.observation,
    posterior=snakemake.input.posterior,
    result=snakemake.output.result,
    plot=snakemake.output.plot,
)
