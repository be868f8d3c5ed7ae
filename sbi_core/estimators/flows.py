"""NPE and NLE flows through sbi: train them, and rebuild them from JSON hyperparameters.

sbi 0.27 builds the zuko flows and runs the training loop; we keep what sbi
does not: an architecture described by JSON hyperparameters, so that a saved
state dict is rebuilt in a fresh process without unpickling code, and without
importing sbi (:mod:`sbi_core.estimators.conditional_flow`). x is flattened
to a vector (the flows condition on, or model, vectors); its shape is recorded.

References:
    | Fast epsilon-free Inference of Simulation Models with Bayesian Conditional
    | Density Estimation (Papamakarios & Murray, 2016) https://arxiv.org/abs/1605.06376
    | Sequential Neural Likelihood (Papamakarios et al., 2019) https://arxiv.org/abs/1805.07226
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.estimators.conditional_flow import ConditionalFlow, build_conditional_flow
from sbi_core.estimators.device import prior_on_device

__all__ = ["NullTracker", "train_flow", "build_flow"]

_FLOW_METHODS = ("npe", "nle")
_ARCHITECTURE = ("flow", "hidden_features", "num_transforms", "num_bins")


def train_flow(
    method: str, theta: Tensor, x: Tensor, prior: Distribution, training: dict[str, Any], device: str = "cpu"
) -> tuple[ConditionalFlow, dict[str, Any], dict[str, Any]]:
    """Trains an NPE or NLE flow with sbi; the caller seeds torch beforehand.

    Arguments:
        method: ``npe`` or ``nle``.
        theta: Parameters ``[N, d]``.
        x: Simulations ``[N, ...]`` (flattened here).
        prior: The prior the parameters were drawn from (on the CPU; sbi gets a copy
            on `device`).
        training: The flow's ``training`` keys: ``flow``, ``hidden_features``,
            ``num_transforms``, ``num_bins``, ``batch_size``, ``learning_rate``,
            ``max_epochs``, ``patience``, ``validation_fraction``.
        device: Where sbi trains, ``cpu`` or ``cuda``.

    Returns:
        The trained network (eval mode, on `device`: sbi's weights in the
        :class:`~sbi_core.estimators.conditional_flow.ConditionalFlow` a load rebuilds),
        its hyperparameters (JSON-able, with ``method``) and the loss history
        ``{training_loss, validation_loss, epochs_trained, best_validation_loss}``.
    """
    hyperparameters = {
        "method": method,
        **{key: training[key] for key in _ARCHITECTURE},
        "dim_theta": int(theta.shape[1]),
        "x_shape": list(x.shape[1:]),
    }
    from sbi.inference import NLE, NPE  # here, not at import: sbi.inference costs seconds per job

    trainer_class = {"npe": NPE, "nle": NLE}[_method(method)]
    trainer = trainer_class(
        prior=prior_on_device(prior, device),  # sbi checks that the prior samples on its device
        density_estimator=_builder(hyperparameters),
        device=device,
        show_progress_bars=True,
        tracker=NullTracker(),
    )
    trainer.append_simulations(theta, x.reshape(len(x), -1))
    network = trainer.train(
        training_batch_size=training["batch_size"],
        learning_rate=training["learning_rate"],
        validation_fraction=training["validation_fraction"],
        stop_after_epochs=training["patience"],
        # sbi 0.27 trains while `epoch <= max_num_epochs`, counting from 0: one more epoch than
        # asked. max_epochs means the same for every method (the ratio core trains exactly that many).
        max_num_epochs=training["max_epochs"] - 1,
    )
    summary = trainer.summary
    history = {
        "training_loss": [float(v) for v in summary["training_loss"]],
        "validation_loss": [float(v) for v in summary["validation_loss"]],
        "epochs_trained": int(summary["epochs_trained"][-1]),
        "best_validation_loss": float(summary["best_validation_loss"][-1]),
    }
    with torch.random.fork_rng(devices=[]):  # the rebuild's initial weights are overwritten: leave the stream alone
        flow = build_flow(hyperparameters)
    flow.load_state_dict(network.state_dict())
    flow.to(device)
    return flow.eval(), hyperparameters, history


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

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


def _method(method: str) -> str:
    if method not in _FLOW_METHODS:
        raise ValueError(f"method: expected one of {', '.join(_FLOW_METHODS)} for a flow, got {method!r}")
    return method


def _builder(hyperparameters: dict[str, Any]):
    from sbi.neural_nets import likelihood_nn, posterior_nn

    factory = {"npe": posterior_nn, "nle": likelihood_nn}[_method(hyperparameters["method"])]
    return factory(
        hyperparameters["flow"],
        hidden_features=hyperparameters["hidden_features"],
        num_transforms=hyperparameters["num_transforms"],
        num_bins=hyperparameters["num_bins"],
    )


def build_flow(hyperparameters: dict[str, Any]) -> ConditionalFlow:
    """Builds an untrained network (on the CPU) with the architecture the hyperparameters describe.

    Arguments:
        hyperparameters: ``method`` (``npe`` or ``nle``), ``flow``, ``hidden_features``,
            ``num_transforms``, ``num_bins``, ``dim_theta`` and ``x_shape``.

    Example:
        >>> network = build_flow({"method": "nle", "flow": "zuko_maf", "hidden_features": 8,
        ...                       "num_transforms": 1, "num_bins": 8, "dim_theta": 2, "x_shape": [3]})
        >>> network.log_prob(torch.zeros(1, 4, 3), condition=torch.zeros(4, 2)).shape
        torch.Size([1, 4])
    """
    _method(hyperparameters["method"])
    return build_conditional_flow(hyperparameters)
