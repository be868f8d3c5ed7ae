"""One function per workflow step: files in, files out. The Snakemake scripts call these.

Each step takes the analysis config (validated, defaults filled in), the analysis
name and the paths it reads and writes, so the same steps run from a notebook or
the ``sbi-core`` command as from the workflow.
"""

from sbi_core.pipeline.diagnose import diagnose
from sbi_core.pipeline.limits import pyhf_limits, upper_limit
from sbi_core.pipeline.observe import observe
from sbi_core.pipeline.plot_posterior import plot_posterior
from sbi_core.pipeline.predictive import posterior_predictive
from sbi_core.pipeline.report import report
from sbi_core.pipeline.sample import sample
from sbi_core.pipeline.simulate import collect, simulate
from sbi_core.pipeline.train import train

__all__ = [
    "simulate", "collect", "observe", "train", "sample", "diagnose", "plot_posterior", "posterior_predictive",
    "pyhf_limits", "upper_limit", "report",
]
