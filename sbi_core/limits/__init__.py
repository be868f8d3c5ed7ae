"""Frequentist CLs upper limits on a parameter of interest from any log-ratio model.

The profile likelihood ratio of a trained neural ratio estimator (or of the
exact HistFactory likelihood) gives pyhf's ``qtilde`` test statistic, and the
asymptotic formulae turn it into observed and expected CLs limits, computed as
pyhf's ``AsymptoticCalculator`` and ``upper_limit`` compute them, so that an NRE's
limit and pyhf's stand side by side (:func:`pyhf_upper_limit`).

References:
    | Asymptotic formulae for likelihood-based tests of new physics (Cowan et al., 2011)
    | https://arxiv.org/abs/1007.1727
    | The CLs technique (Read, 2002) https://doi.org/10.1088/0954-3899/28/10/313
"""

from sbi_core.limits.asymptotic import (
    EXPECTED_SIGMAS,
    cls_from_test_statistics,
    cls_upper_limit,
    interpolate_upper_limit,
    qmu_tilde,
)
from sbi_core.limits.bounds import support_bounds
from sbi_core.limits.histfactory import histfactory_asimov_prior
from sbi_core.limits.optimize import maximise_adam, maximise_nelder_mead
from sbi_core.limits.profile import PROFILE_METHODS, Profile, log_objective, profile_log_ratio
from sbi_core.limits.reference import pyhf_fixed_params, pyhf_upper_limit

__all__ = [
    "cls_upper_limit",
    "pyhf_upper_limit",
    "pyhf_fixed_params",
    "histfactory_asimov_prior",
    "profile_log_ratio",
    "Profile",
    "PROFILE_METHODS",
    "log_objective",
    "qmu_tilde",
    "cls_from_test_statistics",
    "interpolate_upper_limit",
    "EXPECTED_SIGMAS",
    "support_bounds",
    "maximise_adam",
    "maximise_nelder_mead",
]
