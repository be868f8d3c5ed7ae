from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import unfold_spectra

unfold_spectra(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    method=snakemake.wildcards.method,
    bins=snakemake.params.bins,
    seed=snakemake.params.seed,
    samples=snakemake.input.samples,
    bootstrap=snakemake.input.bootstrap,
    replicas=list(snakemake.input.replicas),
    ibu_results=snakemake.input.ibu[0] if snakemake.input.ibu else None,
    population_file=snakemake.input.population,
    regenerated=snakemake.input.regenerated,
    table=snakemake.output.table,
    numbers=snakemake.output.numbers,
    spectra_plot=snakemake.output.spectra_plot,
    pair_plot=snakemake.output.pair_plot,
    regenerated_plot=snakemake.output.regenerated_plot,
)
