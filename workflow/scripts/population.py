from sbi_core.job import start_job

start_job(snakemake.log[0], snakemake.threads)
from sbi_core.pipeline import population

population(
    task=snakemake.params.task,
    name=snakemake.wildcards.analysis,
    spec=snakemake.params.spec,
    num_truth_samples=snakemake.params.num_truth_samples,
    seed=snakemake.params.seed,
    file=snakemake.input.file[0] if snakemake.input.file else None,
    output=snakemake.output.population,
)
