"""One function per workflow step: files in, files out. The Snakemake scripts call these.

Each step takes, as typed arguments, the config keys it reads (the same ones its
rule passes as params, so Snakemake reruns exactly what an edit touches), the
analysis name and the paths it reads and writes, so the same steps run from a
notebook or a test (``tests/test_pipeline.py``) as from the workflow.

Steps load on first use (PEP 562): a job imports its own step's dependencies only,
not every step's (torch, matplotlib, pyhf...), which on small analyses
is a good part of each job's run time.
"""

from __future__ import annotations

from sbi_core.lazy import lazy_exports

_STEP_MODULES = {
    "simulate": "simulate", "collect": "simulate", "observe": "observe", "reference_posterior": "observe", "c2st": "c2st", "train": "train", "sample": "sample",
    "diagnose": "diagnose", "plot_posterior": "plot_posterior", "posterior_predictive": "predictive",
    "pyhf_limits": "limits", "upper_limit": "limits", "report": "report",
    "population": "neb", "unfold": "neb", "unfold_replica": "neb", "eb_posteriors": "neb",
    "ibu": "spectra", "unfold_spectra": "spectra",
}

__all__ = list(_STEP_MODULES)


__getattr__, __dir__ = lazy_exports(__name__, _STEP_MODULES, globals())
