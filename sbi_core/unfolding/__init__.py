"""Unfolding: the source distribution behind a population of observations.

Neural empirical Bayes (:func:`fit_source`) fits a source flow :math:`q_\\phi(\\theta)`
inside the prior's support by maximising the marginal likelihood of every
observation through any trained estimator's log-ratio; iterative Bayesian
unfolding (:mod:`sbi_core.unfolding.ibu`) is the binned baseline.

Names load on first use (PEP 562), so the workflow's light steps do not import torch.
"""

from __future__ import annotations

from sbi_core.lazy import lazy_exports

_NAMES = {
    "SourceFlow": "source",
    "load_source": "source",
    "NEBLoss": "objective",
    "ESTIMATORS": "objective",
    "fit_source": "fit",
    "FitSettings": "fit",
    "LikelihoodModel": "exact",
    "binned_spectra": "spectra",
    "population_checks": "regenerate",
    "empirical_bayes_posterior": "posteriors",
}

__all__ = list(_NAMES)


__getattr__, __dir__ = lazy_exports(__name__, _NAMES, globals())
