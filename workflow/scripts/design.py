from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline.design import design

design(
    settings=snakemake.params.settings,
    name=snakemake.wildcards.analysis,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    estimators=dict(snakemake.input.items()),
    eig_csv=snakemake.output.eig,
    best=snakemake.output.best,
    ascent=snakemake.output.ascent,
    plot=snakemake.output.plot,
)
