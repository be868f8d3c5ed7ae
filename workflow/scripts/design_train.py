from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline.design import design_train

design_train(
    settings=snakemake.params.settings,
    training=snakemake.params.training,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    estimator=snakemake.output.estimator,
    history=snakemake.output.history,
)
