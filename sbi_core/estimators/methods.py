"""Every inference method behind one interface: train, save, load, and sample many observations.

Flow methods (``npe``, ``nle``) go through sbi with zuko flows; ratio methods
(``nre`` = NRE-B, ``nre_a``, ``nre_c``, ``bnre``) through our vectorized ratio
core. A saved estimator is its state dict plus JSON hyperparameters whose
``method`` says how to rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from sbi_core.errors import ArtifactError, ConfigError
from sbi_core.estimators.flows import (
    FLOW_METHODS,
    FlowLikelihood,
    build_flow,
    npe_log_density,
    npe_posterior,
    sample_npe_posterior,
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
    "PosteriorEstimate",
    "build_posterior",
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
LogDensity = Callable[[Tensor, Tensor], Tensor]


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


def save_estimator(path: str | Path, network: nn.Module, hyperparameters: dict, provenance: dict | None = None) -> None:
    """Saves the state dict, hyperparameters and provenance (loads with ``weights_only=True``)."""
    save_state(path, network.state_dict(), hyperparameters, provenance)


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


@dataclass(frozen=True)
class PosteriorEstimate:
    """What every consumer needs of a trained estimator, batched over observations.

    Attributes:
        sample: ``sample(x [M, ...], S) -> [M, S, d]``, posterior samples per observation.
        log_density: ``log_density(theta [M, S, d], x [M, ...]) -> [M, S]``, the
            posterior log-density up to a constant per observation (exact for NPE;
            likelihood or ratio plus log-prior for the others), for density ranks
            and HPD regions.
    """

    sample: Sampler
    log_density: LogDensity


def build_posterior(
    network: nn.Module, hyperparameters: dict, prior: Distribution, sampling: dict, device: str = "cpu"
) -> PosteriorEstimate:
    """Returns the posterior of any method, sampled and evaluated for many observations at once.

    NPE samples its flow directly. NLE (its flow seen as a ratio, :class:`FlowLikelihood`)
    and the ratio methods are sampled by our batched SIR or MCMC, as set by the
    config's ``sampling`` block (``sampler``, ``num_proposals``, ``num_chains``,
    ``warmup_steps``, ``thin``), on `device`.
    """
    method = hyperparameters["method"]
    if method == "npe":
        posterior = npe_posterior(network, prior)
        return PosteriorEstimate(
            sample=lambda x, num_samples: sample_npe_posterior(posterior, x, num_samples),
            log_density=_chunked(lambda theta, x: npe_log_density(network, theta, x)),
        )
    if method == "nle":
        network = FlowLikelihood(network, hyperparameters["dim_theta"], tuple(hyperparameters["x_shape"]))
    ratio_posterior = RatioPosterior(network.to(device), prior)
    if sampling["sampler"] == "mcmc":
        options = {
            "num_chains": sampling["num_chains"],
            "warmup_steps": sampling["warmup_steps"],
            "thin": sampling.get("thin", 3 * ratio_posterior.network.dim_theta),
            "show_progress_bar": True,
        }
    else:
        options = {"num_proposals": sampling["num_proposals"]} if "num_proposals" in sampling else {}

    def sample(x: Tensor, num_samples: int) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, ()).item())  # from the caller's seeded stream
        samples = ratio_posterior.sample(x.to(device), num_samples, method=sampling["sampler"], seed=seed, **options)
        return samples.cpu()

    def log_density(theta: Tensor, x: Tensor) -> Tensor:
        with torch.no_grad():
            return ratio_posterior.log_prob_unnormalized(theta.to(device), x.to(device)).cpu()

    return PosteriorEstimate(sample=sample, log_density=_chunked(log_density))


def _chunked(log_density: LogDensity, max_pairs: int = 2**17) -> LogDensity:
    """Evaluates a log-density in chunks of observations, bounding memory at 1000 x 1000 pairs."""

    def evaluate(theta: Tensor, x: Tensor) -> Tensor:
        chunk = max(1, max_pairs // max(1, theta.shape[1]))
        return torch.cat([log_density(t, v) for t, v in zip(theta.split(chunk), x.split(chunk), strict=True)])

    return evaluate


def require_device(device: str, where: str) -> str:
    """Returns `device` if this machine has it; refuses ``cuda`` without a GPU, naming the key."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{where}: {device!r} requested but this machine has no CUDA device; use 'cpu'")
    return device
