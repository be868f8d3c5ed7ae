"""Training any method: the registry says which ``training`` keys it reads and which family trains it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.errors import ConfigError
from sbi_core.estimators.base import Estimator
from sbi_core.estimators.flows import train_flow
from sbi_core.estimators.nle import NLEEstimator
from sbi_core.estimators.npe import NPEEstimator
from sbi_core.estimators.nre import NREEstimator
from sbi_core.estimators.registry import method_spec
from sbi_core.ratio import train_ratio_estimator

__all__ = ["train_estimator", "estimator_class"]

_FLOW_ESTIMATORS: dict[str, type[Estimator]] = {"npe": NPEEstimator, "nle": NLEEstimator}


def estimator_class(method: str) -> type[Estimator]:
    """The :class:`Estimator` subclass of a method (ValueError naming the methods if unknown)."""
    spec = method_spec(method)
    return NREEstimator if spec.family == "ratio" else _FLOW_ESTIMATORS[spec.name]


def train_estimator(
    method: str, theta: Tensor, x: Tensor, prior: Distribution, training: dict[str, Any], device: str = "cpu"
) -> tuple[Estimator, dict[str, Any]]:
    """Trains any method on joint draws; the caller seeds torch beforehand.

    Arguments:
        method: A name in :data:`~sbi_core.estimators.registry.METHODS`.
        theta: Parameters ``[N, d]`` drawn from `prior`.
        x: Their simulations ``[N, ...]``.
        prior: The prior (on the CPU); the estimator keeps it.
        training: The config's ``training`` block; the method's
            :attr:`~sbi_core.estimators.registry.MethodSpec.training_keys` are read
            (all required), the others ignored.
        device: ``cpu`` or ``cuda``: where it trains, and where the estimator stays.

    Returns:
        The trained :class:`Estimator` (eval mode, on `device`) and the loss history
        ``{training_loss, validation_loss, epochs_trained, best_validation_loss}``
        (ratio methods add the ``seed`` of their training run).

    Example:
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> theta = prior.sample((300,))
        >>> training = {"batch_size": 100, "learning_rate": 1e-3, "max_epochs": 2, "patience": 2,
        ...             "validation_fraction": 0.1, "hidden_features": 8, "num_blocks": 1}
        >>> estimator, history = train_estimator("nre_a", theta, theta + torch.randn(300, 2), prior, training)
        >>> estimator.method, history["epochs_trained"]
        ('nre_a', 2)
    """
    spec = method_spec(method)
    missing = [key for key in spec.training_keys if key not in training]
    if missing:
        raise ConfigError(f"training.{missing[0]}: {method} reads it; it is missing from the training settings")
    settings = {key: training[key] for key in spec.training_keys}
    if spec.family == "flow":
        network, hyperparameters, history = train_flow(method, theta, x, prior, settings, device)
        return estimator_class(method)(network, hyperparameters, prior), history
    seed = int(torch.randint(0, 2**31 - 1, ()).item())  # from the caller's seeded stream
    network, history = train_ratio_estimator(theta, x, loss=spec.loss, settings=settings, device=device, seed=seed)
    return NREEstimator.from_network(network, method, prior), history
