from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import diagnose

diagnose(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.input.estimator,
    snakemake.input.test_simulations,
    list(snakemake.input.observations),
    list(snakemake.input.posteriors),
    snakemake.output.calibration,
    snakemake.output.ranks,
    snakemake.output.rank_plot,
    snakemake.output.coverage_plot,
    snakemake.output.tarp_plot,
)
