"""Training any method: the registry says which ``training`` keys it reads and which family trains it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.errors import ConfigError
from sbi_core.estimators.base import Estimator
from sbi_core.estimators.ensemble import EnsembleEstimator
from sbi_core.estimators.flows import train_flow
from sbi_core.estimators.nle import NLEEstimator
from sbi_core.estimators.npe import NPEEstimator
from sbi_core.estimators.nre import NREEstimator
from sbi_core.estimators.registry import method_spec
from sbi_core.ratio import train_ratio_estimator

__all__ = ["train_estimator", "estimator_class", "ENSEMBLE_DEFAULTS"]

# Training keys every method reads but a caller may leave out: one estimator, no resampling.
ENSEMBLE_DEFAULTS: dict[str, Any] = {"ensemble_members": 1, "ensemble_bootstrap": False}

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
            (all required but the ensemble keys and the method's own
            :attr:`~sbi_core.estimators.registry.MethodSpec.training_defaults`), the others ignored.
        device: ``cpu`` or ``cuda``: where it trains, and where the estimator stays.

    Returns:
        The trained :class:`Estimator` (eval mode, on `device`) and the loss history
        ``{training_loss, validation_loss, epochs_trained, best_validation_loss}``
        (ratio methods add the ``seed`` of their training run). With
        ``ensemble_members`` K > 1 (optional, default 1; ``ensemble_bootstrap``, default
        false, trains each member on a bootstrap resample), K estimators are trained in
        turn and returned as one :class:`~sbi_core.estimators.EnsembleEstimator`; the
        history is the first member's curves, the most epochs, the mean best validation
        loss, and every member's history under ``members``.

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
    defaults = {**ENSEMBLE_DEFAULTS, **dict(spec.training_defaults)}
    missing = [key for key in spec.training_keys if key not in training and key not in defaults]
    if missing:
        raise ConfigError(f"training.{missing[0]}: {method} reads it; it is missing from the training settings")
    settings = {key: training[key] if key in training else defaults[key] for key in spec.training_keys}
    members, bootstrap = int(settings.pop("ensemble_members")), bool(settings.pop("ensemble_bootstrap"))
    if members < 1:
        raise ConfigError(f"training.ensemble_members: expected an integer >= 1, got {members}")
    if members == 1:
        return _train_one(method, theta, x, prior, settings, device)
    trained, histories = [], []
    for member in range(members):
        # Bootstrap resamples and member seeds come from the caller's seeded stream, in turn.
        rows = torch.randint(len(theta), (len(theta),)) if bootstrap else torch.arange(len(theta))
        estimator, history = _train_one(method, theta[rows], x[rows], prior, settings, device)
        print(f"ensemble member {member + 1} of {members}: {history['epochs_trained']} epochs, "
              f"best validation loss {history['best_validation_loss']:.4f}", flush=True)
        trained.append(estimator)
        histories.append(history)
    best = [history["best_validation_loss"] for history in histories]
    summary = {
        "training_loss": histories[0]["training_loss"],
        "validation_loss": histories[0]["validation_loss"],
        "epochs_trained": max(history["epochs_trained"] for history in histories),
        "best_validation_loss": sum(best) / len(best),
        "members": histories,
    }
    return EnsembleEstimator(trained, bootstrap), summary


def _train_one(
    method: str, theta: Tensor, x: Tensor, prior: Distribution, settings: dict[str, Any], device: str
) -> tuple[Estimator, dict[str, Any]]:
    """Trains one estimator of `method` with its training `settings` (the ensemble keys removed)."""
    spec = method_spec(method)
    if spec.family == "flow":
        network, hyperparameters, history = train_flow(method, theta, x, prior, settings, device)
        return estimator_class(method)(network, hyperparameters, prior), history
    seed = int(torch.randint(0, 2**31 - 1, ()).item())  # from the caller's seeded stream
    network, history = train_ratio_estimator(theta, x, loss=spec.loss, settings=settings, device=device, seed=seed)
    return NREEstimator.from_network(network, method, prior), history
