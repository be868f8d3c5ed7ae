"""Experimental design: the expected information gain (EIG) of candidate designs, and the best design.

Simulators with a design (:mod:`sbi_core.design.tasks`), EIG bounds vectorized over
designs from the exact likelihood or from any amortised estimator
(:mod:`sbi_core.design.eig`), and multi-start gradient ascent (:mod:`sbi_core.design.optimise`),
through the simulator or, for a black box, through a learned surrogate (:mod:`sbi_core.design.surrogate`).

Names load on first use (PEP 562), so the workflow's light steps do not import torch.
"""

from __future__ import annotations

from sbi_core.lazy import lazy_exports

_NAMES = {
    "DesignSpace": "space",
    "DesignTask": "tasks",
    "BUILTIN_DESIGN_TASKS": "tasks",
    "design_task": "tasks",
    "build_design_task": "tasks",
    "EIGEstimate": "eig",
    "design_observation": "eig",
    "likelihood_eig": "eig",
    "estimator_eig": "eig",
    "AscentResult": "optimise",
    "multistart_ascent": "optimise",
    "candidate_search": "optimise",
    "design_training_set": "training",
    "train_design_estimator": "training",
    "train_marginal_likelihood": "training",
    "surrogate_task": "surrogate",
}

__all__ = list(_NAMES)


__getattr__, __dir__ = lazy_exports(__name__, _NAMES, globals())
