"""NPE and NLE through sbi: train, rebuild from hyperparameters, and expose for sampling.

sbi 0.27 builds the zuko flows and runs the training loop; we keep what sbi
does not: an architecture described by JSON hyperparameters, so that a saved
state dict is rebuilt in a fresh process without unpickling code. x is flattened
to a vector (the flows condition on, or model, vectors); its shape is recorded.

References:
    | Fast epsilon-free Inference of Simulation Models with Bayesian Conditional
    | Density Estimation (Papamakarios & Murray, 2016) https://arxiv.org/abs/1605.06376
    | Sequential Neural Likelihood (Papamakarios et al., 2019) https://arxiv.org/abs/1805.07226
"""

from __future__ import annotations

import math

import torch
from sbi.inference import NLE, NPE, DirectPosterior
from sbi.neural_nets import likelihood_nn, posterior_nn
from torch import Tensor, nn
from torch.distributions import Distribution


__all__ = [
    "FLOW_METHODS", "NullTracker", "FlowLikelihood", "train_flow", "build_flow",
    "npe_posterior", "sample_npe_posterior", "npe_log_density",
]

FLOW_METHODS = ("npe", "nle")
_TRAINERS = {"npe": (NPE, posterior_nn), "nle": (NLE, likelihood_nn)}
_ARCHITECTURE = ("flow", "hidden_features", "num_transforms", "num_bins")


def train_flow(
    method: str, theta: Tensor, x: Tensor, prior: Distribution, training: dict
) -> tuple[nn.Module, dict, dict]:
    """Trains an NPE or NLE flow with sbi; the caller seeds torch beforehand.

    Arguments:
        method: ``npe`` or ``nle``.
        theta: Parameters [N, d].
        x: Simulations [N, ...] (flattened here).
        prior: The prior the parameters were drawn from.
        training: The config's ``training`` block (flow, sizes, optimiser, early stopping).

    Returns:
        The trained network, its hyperparameters (JSON-able) and the loss history
        ``{training_loss, validation_loss, epochs_trained, best_validation_loss}``.
    """
    hyperparameters = {
        "method": method,
        **{key: training[key] for key in _ARCHITECTURE},
        "dim_theta": int(theta.shape[1]),
        "x_shape": list(x.shape[1:]),
    }
    trainer_class, _ = _TRAINERS[_method(method)]
    trainer = trainer_class(
        prior=prior,
        density_estimator=_builder(hyperparameters),
        show_progress_bars=True,
        tracker=NullTracker(),
    )
    trainer.append_simulations(theta, x.reshape(len(x), -1))
    network = trainer.train(
        training_batch_size=training["batch_size"],
        learning_rate=training["learning_rate"],
        validation_fraction=training["validation_fraction"],
        stop_after_epochs=training["patience"],
        max_num_epochs=training["max_epochs"],
    )
    summary = trainer.summary
    history = {
        "training_loss": [float(v) for v in summary["training_loss"]],
        "validation_loss": [float(v) for v in summary["validation_loss"]],
        "epochs_trained": int(summary["epochs_trained"][-1]),
        "best_validation_loss": float(summary["best_validation_loss"][-1]),
    }
    return network.eval(), hyperparameters, history


class NullTracker:
    """sbi's tracker protocol, doing nothing: sbi would otherwise write TensorBoard logs
    into ./sbi-logs of whatever folder it runs in; we keep the loss history ourselves."""

    log_dir = None

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        pass

    def log_params(self, params: dict) -> None:
        pass

    def add_figure(self, name: str, figure, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


def _method(method: str) -> str:
    if method not in _TRAINERS:
        raise ValueError(f"unknown method {method!r}; expected one of {FLOW_METHODS}")
    return method


def _builder(hyperparameters: dict):
    _, factory = _TRAINERS[_method(hyperparameters["method"])]
    return factory(
        hyperparameters["flow"],
        hidden_features=hyperparameters["hidden_features"],
        num_transforms=hyperparameters["num_transforms"],
        num_bins=hyperparameters["num_bins"],
    )


def build_flow(hyperparameters: dict) -> nn.Module:
    """Builds an untrained network with the architecture the hyperparameters describe.

    sbi's builders need example batches to size the flow and its z-scoring; the
    z-scoring statistics are buffers, overwritten when a state dict is loaded.
    """
    dim_x = math.prod(hyperparameters["x_shape"])
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(16, hyperparameters["dim_theta"], generator=generator)
    x = torch.randn(16, dim_x, generator=generator)
    return _builder(hyperparameters)(theta, x)


def npe_posterior(network: nn.Module, prior: Distribution) -> DirectPosterior:
    """Wraps a trained NPE flow as sbi's posterior, which rejects mass leaking outside the prior's support."""
    return DirectPosterior(posterior_estimator=network, prior=prior)


def sample_npe_posterior(posterior: DirectPosterior, x: Tensor, num_samples: int) -> Tensor:
    """Samples ``[M, num_samples, d]`` given ``M`` observations ``[M, ...]`` at once (x flattened here)."""
    x = x.reshape(len(x), -1)
    samples = posterior.sample_batched((num_samples,), x=x, show_progress_bars=len(x) > 1)
    return samples.transpose(0, 1)


@torch.no_grad()
def npe_log_density(network: nn.Module, theta: Tensor, x: Tensor) -> Tensor:
    """The NPE flow's log-density ``log q(theta_ms | x_m)``: theta ``[M, S, d]``, x ``[M, ...]`` -> ``[M, S]``.

    Not renormalised for mass outside the prior's support (a constant per
    observation, irrelevant to ranks and HPD regions).
    """
    x = x.reshape(len(x), -1)
    return network.log_prob(theta.transpose(0, 1), condition=x).transpose(0, 1)


class FlowLikelihood(nn.Module):
    r"""An NLE flow seen as a ratio estimator: ``f(theta, x) = log q(x | theta)``.

    The likelihood is a ratio up to ``log p(x)``, a constant per observation, so
    our batched samplers (:mod:`sbi_core.sampling`), which need only
    ``all_pairs`` and ``per_observation``, sample its posterior
    :math:`p(\theta)\, q(x | \theta)` for many observations at once.

    Arguments:
        network: A trained NLE network (sbi's conditional density estimator of x given theta).
        dim_theta: The number of parameters.
        x_shape: The shape of one observation.
    """

    def __init__(self, network: nn.Module, dim_theta: int, x_shape: tuple[int, ...]):
        super().__init__()
        self.network = network.eval()
        self.dim_theta = int(dim_theta)
        self.x_shape = tuple(int(n) for n in x_shape)

    def all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        """Returns ``log q(x_j | theta_i)`` for every pair: theta ``[N, d]``, x ``[M, ...]`` -> ``[N, M]``."""
        x = x.reshape(len(x), 1, -1).expand(-1, len(theta), -1)
        return self.network.log_prob(x, condition=theta).T

    def per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        """Returns ``log q(x_m | theta_mc)``: theta ``[M, C, d]``, x ``[M, ...]`` -> ``[M, C]``."""
        num_observations, num_per_observation, dim = theta.shape
        x = x.reshape(num_observations, 1, -1).expand(-1, num_per_observation, -1).reshape(1, -1, x[0].numel())
        log_prob = self.network.log_prob(x, condition=theta.reshape(-1, dim))
        return log_prob.reshape(num_observations, num_per_observation)
