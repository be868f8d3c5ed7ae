"""Loading a saved estimator of any method: state dict plus JSON hyperparameters, no pickled code.

:meth:`Estimator.save <sbi_core.estimators.Estimator.save>` writes the file;
:func:`load_estimator` reads it with ``torch.load(weights_only=True)``, rebuilds
the architecture its hyperparameters describe and loads the weights, refusing a
foreign file with a message naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution

from sbi_core.errors import ArtifactError
from sbi_core.estimators.base import Estimator
from sbi_core.estimators.ensemble import EnsembleEstimator
from sbi_core.estimators.registry import METHODS, REGISTRY
from sbi_core.estimators.training import estimator_class
from sbi_core.io import load_state

__all__ = ["load_estimator"]


def load_estimator(
    path: str | Path,
    prior: Distribution | None = None,
    device: str | torch.device = "cpu",
    embedding_net: nn.Module | None = None,
) -> Estimator:
    """Rebuilds a saved estimator of any method and loads its weights.

    Arguments:
        path: A file written by :meth:`Estimator.save <sbi_core.estimators.Estimator.save>`.
        prior: The prior it was trained under (NPE's log-ratio and every posterior need it).
        device: Where the estimator goes.
        embedding_net: A ratio estimator's embedding net, if it was built with one (the
            hyperparameters do not describe it).

    Returns:
        The estimator, in eval mode, on `device`.

    Raises:
        ArtifactError: Naming the file: not an estimator file, an unknown method, or
            weights that do not fit the recorded architecture.
    """
    state_dict, hyperparameters = load_state(path)
    method = hyperparameters.get("method")
    if method not in REGISTRY:
        raise ArtifactError(f"{path}: hyperparameters.method is {method!r}, expected one of {METHODS}")
    options: dict[str, Any] = {} if embedding_net is None else {"embedding_net": embedding_net}
    try:
        built = EnsembleEstimator if "ensemble" in hyperparameters else estimator_class(method)
        estimator = built.from_hyperparameters(hyperparameters, prior, **options)
    except (ArtifactError, KeyError, TypeError, ValueError) as error:
        raise ArtifactError(f"{path}: cannot rebuild the {method} estimator: {error}") from error
    try:
        estimator.network.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ArtifactError(f"{path}: weights do not fit the recorded architecture: {error}") from error
    return estimator.to(device).eval()
