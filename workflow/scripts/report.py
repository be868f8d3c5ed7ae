from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import report

report(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    list(snakemake.input.simulation_metadata),
    list(snakemake.input.estimator_metadata),
    list(snakemake.input.calibrations),
    list(snakemake.input.predictive_checks),
    list(snakemake.input.limits),
    list(snakemake.input.plots),
    snakemake.output.summary,
    snakemake.output.html,
)
