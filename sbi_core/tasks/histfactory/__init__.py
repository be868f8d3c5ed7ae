"""HistFactory: a pyhf JSON workspace as simulator, prior and exact likelihood.

:func:`build_histfactory_task` turns a ``histfactory`` config block into a
:class:`~sbi_core.tasks.Task` whose simulator draws Poisson (and constraint)
data around pyhf's expected data, whose prior comes from the constraint terms,
and whose reference posterior samples prior times exact likelihood.

References:
    | HistFactory: A tool for creating statistical models for use with RooFit and RooStats
    | (Cranmer et al., 2012) https://cds.cern.ch/record/1456844
    | pyhf: pure-Python implementation of HistFactory statistical models
    | (Heinrich et al., 2021) https://doi.org/10.21105/joss.02823
"""

from sbi_core.tasks.histfactory.likelihood import HistFactoryLikelihood
from sbi_core.tasks.histfactory.model import HistFactoryModel
from sbi_core.tasks.histfactory.parameters import HistFactoryParameter, describe_parameters
from sbi_core.tasks.histfactory.priors import TruncatedNormal, histfactory_prior, parameter_prior
from sbi_core.tasks.histfactory.task import (
    DATA_MODES,
    build_histfactory,
    build_histfactory_task,
    sample_reference_posterior,
)
from sbi_core.tasks.histfactory.workspace import load_workspace

__all__ = [
    "build_histfactory_task",
    "build_histfactory",
    "sample_reference_posterior",
    "DATA_MODES",
    "HistFactoryModel",
    "HistFactoryLikelihood",
    "HistFactoryParameter",
    "describe_parameters",
    "histfactory_prior",
    "parameter_prior",
    "TruncatedNormal",
    "load_workspace",
]
