from sbi_core.logs import log_to

log_to(snakemake.log[0])
from sbi_core.pipeline import train

train(
    snakemake.params.analysis,
    snakemake.wildcards.analysis,
    snakemake.wildcards.method,
    snakemake.input.simulations,
    snakemake.output.estimator,
    snakemake.output.metadata,
    snakemake.output.history,
    snakemake.output.loss_plot,
)
