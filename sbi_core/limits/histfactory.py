r"""The prior of the fits to HistFactory Asimov data when ``x`` is the main data only.

With main data as ``x``, the constraint terms are the prior: each constrained
parameter's default prior is its constraint term's posterior given the nominal
auxiliary datum (:mod:`sbi_core.tasks.histfactory.priors`). pyhf's Asimov data
include auxiliary data too, at their expected values under the background-only
fit :math:`\hat\theta_0`: :math:`a = \hat\theta_0` for a normal constraint,
:math:`a = \tau \hat\gamma_0` for a Poisson one. Fitting main-only Asimov data
with the nominal prior therefore differs from pyhf (its :math:`q_{\mu,A}`, hence
the expected limits); the prior built here puts those Asimov auxiliary data into
the constraint terms, so that the main-only fits reproduce pyhf's. A parameter
whose prior the config overrides keeps its override: it has no auxiliary datum.

References:
    | Asymptotic formulae for likelihood-based tests of new physics (Cowan et al., 2011)
    | https://arxiv.org/abs/1007.1727
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.tasks.histfactory.model import HistFactoryModel
from sbi_core.tasks.histfactory.priors import histfactory_prior

__all__ = ["histfactory_asimov_prior"]


def histfactory_asimov_prior(
    model: HistFactoryModel, overrides: Mapping[str, Any] | None = None
) -> Callable[[Tensor], Distribution]:
    """Returns ``theta_0 [d] ->`` the prior with each constraint re-centred on its Asimov auxiliary datum.

    Pass it as ``asimov_prior`` to :func:`~sbi_core.limits.cls_upper_limit` when ``x``
    is the main data and the constraint terms are in the prior (``include_prior=True``).

    Arguments:
        model: The batched HistFactory model (``data: main``).
        overrides: The config's prior overrides (``histfactory.priors``), kept as they are.

    Returns:
        A function of the background-only fit ``theta_0 [d]`` returning a prior like
        :func:`~sbi_core.tasks.histfactory.histfactory_prior`'s.

    Example:
        >>> model, prior = build_histfactory({"workspace": "config/workspaces/simple.json"}, "w")
        >>> histfactory_asimov_prior(model)(torch.tensor([0.0, 1.0, 0.96])).mean
        tensor([5.0000, 1.0036, 0.9781])
    """
    overrides = dict(overrides or {})

    def asimov_prior(theta: Tensor) -> Distribution:
        theta = torch.as_tensor(theta).detach().cpu().to(torch.float64).reshape(-1)
        if len(theta) != len(model.parameters):
            raise ValueError(f"theta: expected {len(model.parameters)} values, got {len(theta)}")
        parameters = []
        for value, parameter in zip(theta.tolist(), model.parameters):
            if parameter.constraint is not None and parameter.name not in overrides:
                auxdata = value if parameter.constraint == "normal" else value * parameter.width
                parameter = dataclasses.replace(parameter, auxdata=auxdata)
            parameters.append(parameter)
        return histfactory_prior(parameters, overrides, "overrides")

    return asimov_prior
