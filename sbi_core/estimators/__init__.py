"""Every inference method behind one interface: NPE and NLE (sbi, zuko flows) and the NRE family (our ratio core).

A trained method is an :class:`Estimator`: a differentiable log-ratio
``log r(theta, x)`` for all pairs ``[N, M]`` or per observation ``[M, C]``, the
batched posterior (:class:`PosteriorEstimate`), and :meth:`Estimator.save` /
:func:`load_estimator`. :func:`train_estimator` trains any method. The methods
are listed once, in :mod:`sbi_core.estimators.registry`.

Names load on first use (PEP 562): the registry imports nothing heavy, so the
config schema and the Snakefile read it without importing torch or sbi.

Example:
    >>> from sbi_core.estimators import LIKELIHOOD_METHODS, METHODS
    >>> METHODS
    ('npe', 'nle', 'nre', 'nre_a', 'nre_c', 'bnre')
    >>> "npe" in LIKELIHOOD_METHODS
    False
"""

from __future__ import annotations

from sbi_core.lazy import lazy_exports

_NAMES = {
    "MethodSpec": "registry",
    "REGISTRY": "registry",
    "METHODS": "registry",
    "LIKELIHOOD_METHODS": "registry",
    "method_spec": "registry",
    "Estimator": "base",
    "NPEEstimator": "npe",
    "NLEEstimator": "nle",
    "NREEstimator": "nre",
    "EnsembleEstimator": "ensemble",
    "PosteriorEstimate": "posterior",
    "train_estimator": "training",
    "load_estimator": "loading",
    "require_device": "device",
    "prior_on_device": "device",
}

__all__ = list(_NAMES)


__getattr__, __dir__ = lazy_exports(__name__, _NAMES, globals())
