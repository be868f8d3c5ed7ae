from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import train

train(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    training=snakemake.params.training,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    simulations=snakemake.input.simulations,
    estimator=snakemake.output.estimator,
    metadata=snakemake.output.metadata,
    history=snakemake.output.history,
    loss_plot=snakemake.output.loss_plot,
)
