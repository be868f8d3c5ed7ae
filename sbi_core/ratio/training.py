"""Training a ratio estimator: Adam, a validation split, early stopping and gradient clipping.

Each batch draws its atoms (:func:`sbi_core.ratio.losses.draw_atoms`) and the
network evaluates only those pairs, ``theta[atoms]`` with each ``x``, in one
vectorized call. Shuffling, the split and the atoms come from one CPU generator
seeded by ``seed``, and the weights are initialised from the same seed, so a
run on the CPU is reproducible. The validation atoms are drawn once, so the
validation losses of successive epochs compare like with like.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from sbi_core.errors import ConfigError
from sbi_core.estimators.registry import REGISTRY
from sbi_core.ratio.losses import LOSSES, RatioLoss, build_loss
from sbi_core.ratio.network import ACTIVATIONS, RatioEstimator

__all__ = ["DEFAULT_SETTINGS", "default_settings", "train_ratio_estimator"]

# Shared by every loss; a method's own defaults (the registry's) override them in default_settings.
DEFAULT_SETTINGS: dict[str, Any] = {
    "batch_size": 200,
    "learning_rate": 5e-4,
    "max_epochs": 500,
    "patience": 20,
    "validation_fraction": 0.1,
    "hidden_features": 50,
    "num_blocks": 2,
    "activation": "relu",
    "num_atoms": 10,
    "gamma": 1.0,
    "regularization_strength": 100.0,
    "clip_max_norm": 5.0,
}


def default_settings(loss: str) -> dict[str, Any]:
    """The settings a ``loss`` trains with when none are given: :data:`DEFAULT_SETTINGS` with the
    method's own defaults from the registry (NRE-B: 50 atoms, patience 50), the same as the workflow's.

    Example:
        >>> default_settings("nre_b")["num_atoms"], default_settings("nre_c")["num_atoms"]
        (50, 10)
    """
    if loss not in LOSSES:
        raise ConfigError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
    own = next(dict(spec.training_defaults) for spec in REGISTRY.values() if spec.loss == loss)
    return {**DEFAULT_SETTINGS, **{key: value for key, value in own.items() if key in DEFAULT_SETTINGS}}


_POSITIVE_INTEGERS = ("batch_size", "max_epochs", "patience", "hidden_features", "num_atoms")


def train_ratio_estimator(
    theta: Tensor,
    x: Tensor,
    loss: str = "nre_b",
    settings: dict[str, Any] | None = None,
    device: str = "cpu",
    seed: int | None = None,
    embedding_net: nn.Module | None = None,
    show_progress_bar: bool = True,
) -> tuple[RatioEstimator, dict[str, Any]]:
    """Trains a :class:`RatioEstimator` on joint draws ``(theta, x)``.

    Arguments:
        theta: Parameters ``[N, d]``, drawn from the prior.
        x: Their simulations ``[N, ...]``.
        loss: ``"nre_a"``, ``"nre_b"``, ``"nre_c"`` or ``"bnre"``.
        settings: Overrides of the loss's :func:`default_settings`: ``batch_size``,
            ``learning_rate``, ``max_epochs``, ``patience`` (epochs without a better
            validation loss before stopping), ``validation_fraction``,
            ``hidden_features``, ``num_blocks``, ``activation``, ``num_atoms`` (see
            :func:`~sbi_core.ratio.losses.build_loss`), ``gamma`` (NRE-C),
            ``regularization_strength`` (BNRE's lambda), ``clip_max_norm`` (``None``
            for no clipping). A training batch smaller than the loss's atom count
            (the remainder of the shuffled split) is skipped that epoch.
        device: ``"cpu"`` or ``"cuda"`` (or ``"cuda:1"``, ...).
        seed: Seeds the initial weights, split, shuffling and atoms; drawn from
            torch's global generator if omitted.
        embedding_net: An optional embedding net for x, trained jointly.
        show_progress_bar: Whether to show a tqdm bar advancing once per epoch.

    Returns:
        The trained network (best validation weights, eval mode, on ``device``) and
        the history ``{training_loss, validation_loss, epochs_trained,
        best_validation_loss, seed}``.

    Example:
        >>> theta = torch.randn(300, 2)
        >>> x = theta + 0.1 * torch.randn(300, 2)
        >>> network, history = train_ratio_estimator(
        ...     theta, x, "nre_b", {"max_epochs": 2, "num_atoms": 5}, seed=0, show_progress_bar=False)
        >>> history["epochs_trained"]
        2

    References:
        | On Contrastive Learning for Likelihood-free Inference (Durkan et al., 2020)
        | https://arxiv.org/abs/2002.03712
    """
    settings = _check_settings(settings, loss)
    theta, x = _check_data(theta, x)
    if seed is None:
        seed = int(torch.randint(2**31 - 1, ()))
    objective = build_loss(loss, settings["num_atoms"], settings["gamma"], settings["regularization_strength"])
    generator = torch.Generator().manual_seed(seed)

    num_simulations = len(theta)
    num_validation = max(1, math.ceil(settings["validation_fraction"] * num_simulations))
    if settings["batch_size"] < objective.num_atoms:
        raise ConfigError(
            f"settings.num_atoms: {loss} takes {objective.num_atoms} atoms per observation from its "
            f"batch, more than settings.batch_size = {settings['batch_size']}"
        )
    if num_validation < objective.num_atoms:
        raise ConfigError(
            f"settings.validation_fraction: the validation split holds {num_validation} simulations, "
            f"fewer than the {objective.num_atoms} atoms per observation of {loss}; use more "
            "simulations or a larger validation_fraction"
        )
    if num_simulations - num_validation < objective.num_atoms:
        raise ConfigError(
            f"settings.validation_fraction: only {num_simulations - num_validation} training simulations "
            f"are left, fewer than the {objective.num_atoms} atoms per observation of {loss}"
        )
    permutation = torch.randperm(num_simulations, generator=generator)
    train_index, validation_index = permutation[num_validation:], permutation[:num_validation]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = RatioEstimator(
            dim_theta=theta.shape[1],
            x_shape=x.shape[1:],
            hidden_features=settings["hidden_features"],
            num_blocks=settings["num_blocks"],
            activation=settings["activation"],
            embedding_net=embedding_net,
        )
    network.fit_standardization(theta[train_index], x[train_index])
    network.to(device)
    theta, x = theta.to(device), x.to(device)
    # Validation batches and their atoms are fixed for the whole run.
    validation_batches = [
        (batch.to(device), objective.atoms(len(batch), generator).to(device))
        for batch in _split(validation_index, settings["batch_size"], merge_remainder=True)
    ]

    optimizer = torch.optim.Adam(network.parameters(), lr=settings["learning_rate"])
    history: dict[str, Any] = {"training_loss": [], "validation_loss": []}
    best_loss, best_state, epochs_since_best = math.inf, copy.deepcopy(network.state_dict()), 0
    progress = tqdm(range(settings["max_epochs"]), desc=f"training {loss}", disable=not show_progress_bar)
    for _ in progress:
        network.train()
        total, count = torch.zeros((), device=device), 0
        shuffled = train_index[torch.randperm(len(train_index), generator=generator)]
        for batch in _split(shuffled, settings["batch_size"], merge_remainder=False):
            if len(batch) < objective.num_atoms:
                continue
            atoms = objective.atoms(len(batch), generator).to(device)
            batch = batch.to(device)
            value = _batch_loss(network, objective, theta[batch], x[batch], atoms)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if settings["clip_max_norm"] is not None:
                nn.utils.clip_grad_norm_(network.parameters(), settings["clip_max_norm"])
            optimizer.step()
            total, count = total + value.detach() * len(batch), count + len(batch)
        history["training_loss"].append(total.item() / count)

        network.eval()
        with torch.no_grad():
            validation = sum(
                _batch_loss(network, objective, theta[batch], x[batch], atoms) * len(batch)
                for batch, atoms in validation_batches
            ).item() / num_validation
        history["validation_loss"].append(validation)
        progress.set_postfix(train=f"{history['training_loss'][-1]:.4f}", validation=f"{validation:.4f}")

        if validation < best_loss:
            best_loss, epochs_since_best = validation, 0
            best_state = copy.deepcopy(network.state_dict())
        else:
            epochs_since_best += 1
            if epochs_since_best >= settings["patience"]:
                break
    progress.close()

    network.load_state_dict(best_state)
    history.update(
        epochs_trained=len(history["training_loss"]), best_validation_loss=float(best_loss), seed=seed
    )
    return network.eval(), history


def _batch_loss(network: RatioEstimator, objective: RatioLoss, theta: Tensor, x: Tensor, atoms: Tensor) -> Tensor:
    """The loss of one batch from the logits of its atoms only, ``theta[atoms]`` with each x."""
    return objective.atom_loss(network.per_observation(theta[atoms], x))


def _split(index: Tensor, batch_size: int, merge_remainder: bool) -> list[Tensor]:
    """Splits an index into batches; a short last batch is optionally merged into the one before."""
    batches = list(index.split(batch_size))
    if merge_remainder and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _check_settings(settings: dict[str, Any] | None, loss: str) -> dict[str, Any]:
    defaults = default_settings(loss)
    settings = dict(settings or {})
    for key in settings:
        if key not in defaults:
            raise ConfigError(f"settings.{key}: unknown key; expected some of {', '.join(defaults)}")
    settings = {**defaults, **settings}
    for key in _POSITIVE_INTEGERS:
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"settings.{key}: expected a positive integer, got {value!r}")
    if isinstance(settings["num_blocks"], bool) or not isinstance(settings["num_blocks"], int) or settings["num_blocks"] < 0:
        raise ConfigError(f"settings.num_blocks: expected a non-negative integer, got {settings['num_blocks']!r}")
    if settings["activation"] not in ACTIVATIONS:
        raise ConfigError(f"settings.activation: expected one of {sorted(ACTIVATIONS)}, got {settings['activation']!r}")
    checks = {
        "learning_rate": lambda v: v > 0,
        "validation_fraction": lambda v: 0 < v < 1,
        "gamma": lambda v: v > 0,
        "regularization_strength": lambda v: v >= 0,
    }
    for key, valid in checks.items():
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value):
            raise ConfigError(f"settings.{key}: invalid value {value!r}")
    clip = settings["clip_max_norm"]
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip <= 0):
        raise ConfigError(f"settings.clip_max_norm: expected a positive number or None, got {clip!r}")
    if loss in ("nre_b", "nre_c") and settings["num_atoms"] < 2:
        raise ConfigError(f"settings.num_atoms: {loss} needs at least 2 atoms, got {settings['num_atoms']}")
    return settings


def _check_data(theta: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    if not isinstance(theta, Tensor) or theta.ndim != 2:
        raise ValueError(f"theta: expected a tensor [N, d], got {getattr(theta, 'shape', type(theta).__name__)}")
    if not isinstance(x, Tensor) or x.ndim < 2 or len(x) != len(theta):
        raise ValueError(
            f"x: expected a tensor [N, ...] with N = {len(theta)} rows like theta, "
            f"got {getattr(x, 'shape', type(x).__name__)}"
        )
    theta, x = theta.to(torch.float32), x.to(torch.float32)
    for name, data in (("theta", theta), ("x", x)):
        if not torch.isfinite(data).all():
            raise ValueError(f"{name}: contains NaN or inf; drop invalid simulations first")
    return theta, x
