"""NPE and NLE behind one small interface: train, save, rebuild, and wrap as a posterior.

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
from sbi.inference import NLE, NPE, DirectPosterior, MCMCPosterior
from sbi.inference.potentials import likelihood_estimator_based_potential
from sbi.neural_nets import likelihood_nn, posterior_nn
from torch import Tensor, nn
from torch.distributions import Distribution


__all__ = ["FLOW_METHODS", "NullTracker", "train_flow", "build_flow", "flow_posterior", "sample_flow_posterior"]

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


def flow_posterior(
    network: nn.Module, hyperparameters: dict, prior: Distribution, mcmc: dict
) -> DirectPosterior | MCMCPosterior:
    """Wraps a network as an sbi posterior: direct sampling (NPE) or slice-sampling MCMC (NLE).

    Arguments:
        network: A trained NPE or NLE network.
        hyperparameters: Its hyperparameters (``method`` decides the wrapper).
        prior: The prior (support for NPE's rejection of leaked mass; prior term for NLE).
        mcmc: The config's ``sampling.mcmc`` block (num_chains, warmup_steps, thin).
    """
    if _method(hyperparameters["method"]) == "npe":
        return DirectPosterior(posterior_estimator=network, prior=prior)
    potential, transform = likelihood_estimator_based_potential(network, prior, x_o=None)
    return MCMCPosterior(
        potential,
        proposal=prior,
        theta_transform=transform,
        method="slice_np_vectorized",
        num_chains=mcmc["num_chains"],
        warmup_steps=mcmc["warmup_steps"],
        thin=mcmc["thin"],
    )


def sample_flow_posterior(posterior: DirectPosterior | MCMCPosterior, x: Tensor, num_samples: int) -> Tensor:
    """Samples [M, num_samples, d] given M observations at once (x is [M, ...], flattened here).

    One observation is sampled with the posterior's own settings (NLE: `num_chains`
    chains). For a batch, MCMC gives each observation one chain: the batch already
    supplies M chains to the vectorized slice sampler, and `num_chains` per
    observation would multiply the cost for no gain in the rank statistics.
    """
    x = x.reshape(len(x), -1)
    if len(x) == 1:
        return posterior.sample((num_samples,), x=x, show_progress_bars=True)[None]
    options = {"num_chains": 1} if isinstance(posterior, MCMCPosterior) else {}
    samples = posterior.sample_batched((num_samples,), x=x, show_progress_bars=True, **options)
    return samples.transpose(0, 1)
