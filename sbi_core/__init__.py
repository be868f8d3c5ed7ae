"""sbi_core: simulation-based inference for physicists.

A plain library (it never imports snakemake): tasks (simulators and priors),
estimators (NPE, NLE), diagnostics and artifact formats. The Snakemake workflow
in ``workflow/`` calls it one function per rule.
"""

__version__ = "0.1.0"
