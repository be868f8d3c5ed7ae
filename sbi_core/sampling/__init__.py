"""Posterior samplers vectorized across many observations: SIR from the prior and batched MCMC.

Both take any log-ratio model (:class:`~sbi_core.sampling.support.LogRatioModel`: a
trained :class:`~sbi_core.estimators.Estimator` of any method, or a bare
:class:`~sbi_core.ratio.RatioEstimator`) and its prior and return samples
``[M, S, d]`` for ``M`` observations ``[M, ...]`` in one pass.
"""

from sbi_core.sampling.mcmc import sample_mcmc
from sbi_core.sampling.posterior import SAMPLING_METHODS, RatioPosterior
from sbi_core.sampling.sir import LowEffectiveSampleSizeWarning, logit_matrix, sample_sir
from sbi_core.sampling.support import LogRatioModel, prior_log_prob

__all__ = [
    "RatioPosterior",
    "SAMPLING_METHODS",
    "sample_sir",
    "sample_mcmc",
    "logit_matrix",
    "prior_log_prob",
    "LogRatioModel",
    "LowEffectiveSampleSizeWarning",
]
