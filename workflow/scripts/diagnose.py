from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import diagnose

diagnose(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    sampling=snakemake.params.sampling,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    num_simulations=snakemake.params.num_simulations,
    num_samples=snakemake.params.num_samples,
    confidence=snakemake.params.confidence,
    coverage_num_levels=snakemake.params.coverage_num_levels,
    tarp=snakemake.params.tarp,
    estimator=snakemake.input.estimator,
    test_simulations=snakemake.input.test_simulations,
    calibration=snakemake.output.calibration,
    ranks=snakemake.output.ranks,
    rank_plot=snakemake.output.rank_plot,
    coverage_plot=snakemake.output.coverage_plot,
    tarp_plot=snakemake.output.tarp_plot,
)
