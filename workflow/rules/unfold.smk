rule population:
    """The observed population: the user's file, or a closure test simulated from a known source."""
    input:
        file=population_data_file,
        task_files=task_files,
    output:
        population="results/{analysis}/unfolding/population.npz",
    log:
        "results/{analysis}/logs/unfolding/population.log",
    benchmark:
        "results/{analysis}/benchmarks/unfolding/population.tsv"
    priority: 3
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        task=task_keys,
        seed=SEED,
        spec=lookup(dpath="analyses/{analysis}/unfolding/population", within=config),
        num_truth_samples=lookup(
            dpath="analyses/{analysis}/unfolding/num_samples", within=config
        ),
    script:
        "../scripts/population.py"


rule unfold:
    """Neural empirical Bayes with one estimator: the fitted source, its bootstrap refits, the regenerated population."""
    input:
        estimator="results/{analysis}/estimators/{method}.pt",
        population="results/{analysis}/unfolding/population.npz",
        task_files=task_files,
    output:
        source="results/{analysis}/unfolding/{method}/source.pt",
        history="results/{analysis}/unfolding/{method}/source_history.csv",
        samples="results/{analysis}/unfolding/{method}/unfolded.nc",
        bootstrap="results/{analysis}/unfolding/{method}/bootstrap.npz",
        regenerated="results/{analysis}/unfolding/{method}/regenerated.npz",
        metrics="results/{analysis}/unfolding/{method}/metrics.json",
    log:
        "results/{analysis}/logs/unfolding/{method}.log",
    benchmark:
        "results/{analysis}/benchmarks/unfolding/{method}.tsv"
    priority: 2
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=480,
        gpu=gpu_request,
    params:
        task=task_keys,
        seed=SEED,
        device=DEVICE,
        settings=unfold_fit_settings,
    script:
        "../scripts/unfold.py"


rule unfold_replica:
    """The estimator's own spread: a replica trained on resampled simulations, and the source fitted with it."""
    input:
        simulations="results/{analysis}/simulations/train.npz",
        population="results/{analysis}/unfolding/population.npz",
        task_files=task_files,
    output:
        samples="results/{analysis}/unfolding/{method}/replicas/replica_{replica}.npz",
    log:
        "results/{analysis}/logs/unfolding/{method}_replica_{replica}.log",
    benchmark:
        "results/{analysis}/benchmarks/unfolding/{method}_replica_{replica}.tsv"
    priority: 2
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=480,
        gpu=gpu_request,
    params:
        task=task_keys,
        seed=SEED,
        device=DEVICE,
        training=training_settings,
        settings=unfold_fit_settings,
    script:
        "../scripts/unfold_replica.py"


rule ibu:
    """Iterative Bayesian unfolding per parameter, the binned baseline, with every iteration kept."""
    input:
        simulations="results/{analysis}/simulations/train.npz",
        population="results/{analysis}/unfolding/population.npz",
        task_files=task_files,
    output:
        results="results/{analysis}/unfolding/ibu/results.json",
    log:
        "results/{analysis}/logs/unfolding/ibu.log",
    benchmark:
        "results/{analysis}/benchmarks/unfolding/ibu.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        task=task_keys,
        seed=SEED,
        bins=lookup(dpath="analyses/{analysis}/unfolding/bins", within=config),
        ibu=lookup(dpath="analyses/{analysis}/unfolding/ibu", within=config),
    script:
        "../scripts/ibu.py"


rule unfold_spectra:
    """Binned spectra with bands beside truth, prior and IBU; closure numbers; the plots."""
    input:
        unpack(unfold_spectra_inputs),
    output:
        table="results/{analysis}/unfolding/{method}/spectra.csv",
        numbers="results/{analysis}/unfolding/{method}/closure.json",
        spectra_plot=report(
            "results/{analysis}/unfolding/{method}/spectra.png",
            caption="../report/unfolding.rst",
            category="Unfolding",
        ),
        pair_plot="results/{analysis}/unfolding/{method}/pair.png",
        regenerated_plot="results/{analysis}/unfolding/{method}/regenerated.png",
    log:
        "results/{analysis}/logs/unfolding/{method}_spectra.log",
    benchmark:
        "results/{analysis}/benchmarks/unfolding/{method}_spectra.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        task=task_keys,
        seed=SEED,
        bins=lookup(dpath="analyses/{analysis}/unfolding/bins", within=config),
    script:
        "../scripts/unfold_spectra.py"


rule eb_posteriors:
    """Empirical-Bayes posteriors of the population's first observations under the fitted source."""
    input:
        estimator="results/{analysis}/estimators/{method}.pt",
        source="results/{analysis}/unfolding/{method}/source.pt",
        population="results/{analysis}/unfolding/population.npz",
        task_files=task_files,
    output:
        posteriors="results/{analysis}/unfolding/{method}/posteriors.nc",
    log:
        "results/{analysis}/logs/unfolding/{method}_posteriors.log",
    benchmark:
        "results/{analysis}/benchmarks/unfolding/{method}_posteriors.tsv"
    conda:
        "../../envs/sbi.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=gpu_request,
    params:
        task=task_keys,
        seed=SEED,
        device=DEVICE,
        num_observations=lookup(
            dpath="analyses/{analysis}/unfolding/posteriors", within=config
        ),
        num_samples=lookup(
            dpath="analyses/{analysis}/sampling/num_samples", within=config
        ),
    script:
        "../scripts/eb_posteriors.py"
