"""Every inference method behind one interface: train, save, load, and sample many observations.

Flow methods (``npe``, ``nle``) go through sbi with zuko flows; ratio methods
(``nre`` = NRE-B, ``nre_a``, ``nre_c``, ``bnre``) through our vectorized ratio
core. A saved estimator is its state dict plus JSON hyperparameters whose
``method`` says how to rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from sbi_core.errors import ArtifactError, ConfigError
from sbi_core.estimators.flows import (
    FLOW_METHODS,
    build_flow,
    flow_posterior,
    sample_flow_posterior,
    train_flow,
)
from sbi_core.io import load_state, save_state
from sbi_core.ratio import RatioEstimator, train_ratio_estimator
from sbi_core.sampling import RatioPosterior

__all__ = [
    "METHODS",
    "RATIO_LOSSES",
    "train_estimator",
    "save_estimator",
    "load_estimator",
    "build_sampler",
    "require_device",
]

# Workflow method name -> loss of the ratio core.
RATIO_LOSSES = {"nre": "nre_b", "nre_a": "nre_a", "nre_c": "nre_c", "bnre": "bnre"}
METHODS = (*FLOW_METHODS, *RATIO_LOSSES)
_RATIO_SETTINGS = (
    "batch_size", "learning_rate", "max_epochs", "patience", "validation_fraction",
    "hidden_features", "num_blocks", "num_atoms", "gamma", "regularization_strength",
)

Sampler = Callable[[Tensor, int], Tensor]


def train_estimator(
    method: str, theta: Tensor, x: Tensor, prior: Distribution, training: dict, device: str = "cpu"
) -> tuple[nn.Module, dict, dict]:
    """Trains any method; the caller seeds torch beforehand.

    Arguments:
        method: One of :data:`METHODS`.
        theta: Parameters [N, d] drawn from `prior`.
        x: Simulations [N, ...].
        prior: The prior.
        training: The config's ``training`` block.
        device: ``cpu`` or ``cuda`` (ratio methods; sbi's flows train on the CPU here).

    Returns:
        The trained network (on the CPU), its JSON hyperparameters (with ``method``)
        and the loss history ``{training_loss, validation_loss, epochs_trained,
        best_validation_loss}``.
    """
    if method in FLOW_METHODS:
        return train_flow(method, theta, x, prior, training)
    if method not in RATIO_LOSSES:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    settings = {key: training[key] for key in _RATIO_SETTINGS}
    seed = int(torch.randint(0, 2**31 - 1, ()).item())  # from the caller's seeded stream
    network, history = train_ratio_estimator(
        theta, x, loss=RATIO_LOSSES[method], settings=settings, device=device, seed=seed
    )
    hyperparameters = {"method": method, "loss": RATIO_LOSSES[method], **network.hyperparameters}
    return network.cpu(), hyperparameters, history


def save_estimator(path: str | Path, network: nn.Module, hyperparameters: dict) -> None:
    """Saves the state dict and hyperparameters (loads with ``weights_only=True``)."""
    save_state(path, network.state_dict(), hyperparameters)


def load_estimator(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuilds a saved estimator from its hyperparameters and loads its weights."""
    state_dict, hyperparameters = load_state(path)
    method = hyperparameters.get("method")
    if method in FLOW_METHODS:
        network = build_flow(hyperparameters)
    elif method in RATIO_LOSSES:
        network = RatioEstimator.from_hyperparameters(hyperparameters)
    else:
        raise ArtifactError(f"{path}: hyperparameters.method is {method!r}, expected one of {METHODS}")
    try:
        network.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ArtifactError(f"{path}: weights do not fit the recorded architecture: {error}") from error
    return network.eval(), hyperparameters


def build_sampler(
    network: nn.Module, hyperparameters: dict, prior: Distribution, sampling: dict, device: str = "cpu"
) -> Sampler:
    """Returns ``sample(x [M, ...], num_samples) -> [M, num_samples, d]`` for any method.

    NPE samples its flow directly, NLE by sbi's slice sampler (``sampling.mcmc``),
    the ratio methods by our batched SIR or MCMC (``sampling.ratio``) on `device`.
    """
    if hyperparameters["method"] in FLOW_METHODS:
        posterior = flow_posterior(network, hyperparameters, prior, sampling["mcmc"])
        return lambda x, num_samples: sample_flow_posterior(posterior, x, num_samples)
    posterior = RatioPosterior(network.to(device), prior)
    settings = sampling["ratio"]
    if settings["sampler"] == "mcmc":
        options = {key: settings[key] for key in ("num_chains", "warmup_steps", "thin")}
    else:
        options = {"num_proposals": settings["num_proposals"]} if "num_proposals" in settings else {}

    def sample(x: Tensor, num_samples: int) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, ()).item())  # from the caller's seeded stream
        samples = posterior.sample(x.to(device), num_samples, method=settings["sampler"], seed=seed, **options)
        return samples.cpu()

    return sample


def require_device(device: str, where: str) -> str:
    """Returns `device` if this machine has it; refuses ``cuda`` without a GPU, naming the key."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{where}: {device!r} requested but this machine has no CUDA device; use 'cpu'")
    return device
