r"""The ratio estimator: a classifier whose first layer is separable, so all (theta, x) pairs are cheap.

The logit :math:`f(\theta, x) \approx \log p(x | \theta) / p(x)` is a residual MLP
whose first layer acts on the concatenation :math:`[\theta; h(x)]`. That layer is
split as :math:`A \theta + B h(x) + c`: the theta part and the x part are computed
once per batch and broadcast-added, so the logits of all ``N x M`` pairs cost
``O((N + M) H)`` for the first layer and ``O(N M H^2)`` for the rest. The network
is otherwise the ResNet classifier of sbi (``classifier_nn("resnet")``): z-scored
inputs, a linear layer to ``H`` units, ``num_blocks`` pre-activation residual
blocks, and a linear read-out.

References:
    | Likelihood-free MCMC with Amortized Approximate Ratio Estimators (Hermans et al., 2020)
    | https://arxiv.org/abs/1903.04057
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sbi_core.errors import ArtifactError

__all__ = ["ACTIVATIONS", "RatioEstimator"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU}
_ESTIMATOR = "ratio"
_REQUIRED = ("dim_theta", "x_shape", "hidden_features", "num_blocks", "activation", "embedding_features")
# A feature with (nearly) no spread is left unscaled rather than divided by ~0.
_MIN_STD = 1e-14


class _ResidualBlock(nn.Module):
    """``h + W_2 act(W_1 act(h))``, the last layer initialised near zero (as nflows does)."""

    def __init__(self, features: int, activation: str):
        super().__init__()
        self.activation = ACTIVATIONS[activation]()
        self.linear_1 = nn.Linear(features, features)
        self.linear_2 = nn.Linear(features, features)
        nn.init.uniform_(self.linear_2.weight, -1e-3, 1e-3)
        nn.init.uniform_(self.linear_2.bias, -1e-3, 1e-3)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.linear_2(self.activation(self.linear_1(self.activation(h))))


class RatioEstimator(nn.Module):
    r"""Classifier logit :math:`f(\theta, x) \approx \log p(x | \theta) / p(x)`, with all pairs cheap.

    Three ways to pair parameters with observations, all sharing one computation
    of the theta part (:meth:`theta_features`), the x part (:meth:`x_features`)
    and the rest of the network (:meth:`head`):

    * :meth:`forward`: ``theta [B, d]`` with ``x [B, ...]`` row by row, ``-> [B]``;
    * :meth:`all_pairs`: every ``theta [N, d]`` with every ``x [M, ...]``,
      ``-> [N, M]`` with entry ``[i, j] = f(theta_i, x_j)`` (rows are parameters);
    * :meth:`per_observation`: ``C`` parameters per observation,
      ``theta [M, C, d]`` with ``x [M, ...]``, ``-> [M, C]``.

    Inputs are z-scored with buffers set by :meth:`fit_standardization` (from the
    training data, per dimension, as sbi's ``z_score="independent"``); x is
    z-scored before the embedding net.

    Arguments:
        dim_theta: The number of parameters ``d``.
        x_shape: The shape of one observation (without the batch dimension).
        hidden_features: The width ``H`` of the hidden layers.
        num_blocks: The number of residual blocks.
        activation: ``"relu"`` or ``"silu"``.
        embedding_net: Maps z-scored ``x [M, *x_shape]`` to features ``[M, E]``;
            by default ``x`` is flattened. It is not described by the JSON
            hyperparameters: pass it again to :meth:`from_hyperparameters`.
        embedding_features: ``E``; inferred from a dummy forward pass if omitted.

    Example:
        >>> network = RatioEstimator(dim_theta=2, x_shape=[3], hidden_features=16)
        >>> network.all_pairs(torch.randn(5, 2), torch.randn(4, 3)).shape
        torch.Size([5, 4])

    References:
        | Likelihood-free MCMC with Amortized Approximate Ratio Estimators (Hermans et al., 2020)
        | https://arxiv.org/abs/1903.04057
    """

    def __init__(
        self,
        dim_theta: int,
        x_shape: Sequence[int],
        hidden_features: int = 50,
        num_blocks: int = 2,
        activation: str = "relu",
        embedding_net: nn.Module | None = None,
        embedding_features: int | None = None,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.dim_theta = int(dim_theta)
        self.x_shape = tuple(int(n) for n in x_shape)
        self.hidden_features = int(hidden_features)
        self.num_blocks = int(num_blocks)
        self.activation = activation
        dim_x = math.prod(self.x_shape)

        self.register_buffer("theta_mean", torch.zeros(self.dim_theta))
        self.register_buffer("theta_std", torch.ones(self.dim_theta))
        self.register_buffer("x_mean", torch.zeros(dim_x))
        self.register_buffer("x_std", torch.ones(dim_x))

        self.embedding_net = embedding_net
        if embedding_net is None:
            embedding_features = dim_x
        elif embedding_features is None:
            embedding_features = _infer_features(embedding_net, self.x_shape)
        self.embedding_features = int(embedding_features)
        self._embedding_name = None if embedding_net is None else type(embedding_net).__name__

        # The first layer [A, B] acting on [theta; h(x)], split in two; the bias sits on A.
        self.theta_layer = nn.Linear(self.dim_theta, self.hidden_features)
        self.x_layer = nn.Linear(self.embedding_features, self.hidden_features, bias=False)
        self.blocks = nn.ModuleList(_ResidualBlock(self.hidden_features, activation) for _ in range(self.num_blocks))
        self.final_layer = nn.Linear(self.hidden_features, 1)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The JSON-able description of the architecture, for :meth:`from_hyperparameters`."""
        return {
            "estimator": _ESTIMATOR,
            "dim_theta": self.dim_theta,
            "x_shape": list(self.x_shape),
            "hidden_features": self.hidden_features,
            "num_blocks": self.num_blocks,
            "activation": self.activation,
            "embedding_features": None if self.embedding_net is None else self.embedding_features,
            "embedding_net": self._embedding_name,
        }

    @classmethod
    def from_hyperparameters(
        cls, hyperparameters: dict[str, Any], embedding_net: nn.Module | None = None
    ) -> RatioEstimator:
        """Rebuilds the (untrained) architecture that :attr:`hyperparameters` describes.

        Arguments:
            hyperparameters: A dict as :attr:`hyperparameters` returns it.
            embedding_net: The embedding net, if the estimator was built with one.

        Returns:
            The network; load its state dict to restore the trained weights and z-scoring.

        Example:
            >>> network = RatioEstimator(2, [3])
            >>> RatioEstimator.from_hyperparameters(network.hyperparameters).x_shape
            (3,)
        """
        if not isinstance(hyperparameters, dict) or hyperparameters.get("estimator") != _ESTIMATOR:
            found = hyperparameters.get("estimator") if isinstance(hyperparameters, dict) else hyperparameters
            raise ArtifactError(f"hyperparameters.estimator: expected {_ESTIMATOR!r}, got {found!r}")
        missing = [key for key in _REQUIRED if key not in hyperparameters]
        if missing:
            raise ArtifactError(f"hyperparameters.{missing[0]}: required to rebuild a ratio estimator")
        uses_embedding = hyperparameters["embedding_features"] is not None
        if uses_embedding != (embedding_net is not None):
            raise ArtifactError(
                "hyperparameters.embedding_net: the estimator was built "
                + (f"with a {hyperparameters.get('embedding_net')} embedding net; pass it as embedding_net"
                   if uses_embedding else "without an embedding net, but one was given")
            )
        return cls(
            dim_theta=hyperparameters["dim_theta"],
            x_shape=hyperparameters["x_shape"],
            hidden_features=hyperparameters["hidden_features"],
            num_blocks=hyperparameters["num_blocks"],
            activation=hyperparameters["activation"],
            embedding_net=embedding_net,
            embedding_features=hyperparameters["embedding_features"],
        )

    @torch.no_grad()
    def fit_standardization(self, theta: Tensor, x: Tensor) -> None:
        """Sets the z-scoring buffers to the per-dimension mean and std of the data.

        Arguments:
            theta: Training parameters ``[N, d]``.
            x: Training observations ``[N, *x_shape]``.
        """
        theta = self._check_theta(theta, 2)
        x = self._check_x(x).reshape(len(x), -1)
        for name, data in (("theta", theta), ("x", x)):
            mean, std = data.mean(0), data.std(0) if len(data) > 1 else torch.ones_like(data[0])
            std = torch.where(std < _MIN_STD, torch.ones_like(std), std)
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std)

    def theta_features(self, theta: Tensor) -> Tensor:
        """The theta part ``A z(theta) + c`` of the first layer, ``[..., d] -> [..., H]``."""
        return self.theta_layer((theta - self.theta_mean) / self.theta_std)

    def x_features(self, x: Tensor) -> Tensor:
        """The x part ``B h(z(x))`` of the first layer, ``[M, *x_shape] -> [M, H]``."""
        x = self._check_x(x)
        z = (x.reshape(len(x), -1) - self.x_mean) / self.x_std
        if self.embedding_net is not None:
            z = self.embedding_net(z.reshape(x.shape)).reshape(len(x), -1)
        return self.x_layer(z)

    def head(self, h: Tensor) -> Tensor:
        """The rest of the network on summed first-layer features, ``[..., H] -> [...]``."""
        for block in self.blocks:
            h = block(h)
        return self.final_layer(h).squeeze(-1)

    def forward(self, theta: Tensor, x: Tensor) -> Tensor:
        """Returns the logits of the pairs ``(theta_i, x_i)``.

        Arguments:
            theta: Parameters ``[B, d]``.
            x: Observations ``[B, *x_shape]``.

        Returns:
            The logits ``[B]``.
        """
        theta = self._check_theta(theta, 2)
        if len(theta) != len(x):
            raise ValueError(f"theta and x: expected as many rows, got {len(theta)} and {len(x)}")
        return self.head(self.theta_features(theta) + self.x_features(x))

    def all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        """Returns the logits of every pair ``(theta_i, x_j)``.

        Arguments:
            theta: Parameters ``[N, d]``.
            x: Observations ``[M, *x_shape]``.

        Returns:
            The logits ``[N, M]``, entry ``[i, j] = f(theta_i, x_j)``: for a batch of
            joint draws the diagonal holds the joint pairs and the rest marginal pairs.

        Example:
            >>> network = RatioEstimator(2, [2])
            >>> theta, x = torch.randn(3, 2), torch.randn(3, 2)
            >>> torch.allclose(network.all_pairs(theta, x).diagonal(), network(theta, x), atol=1e-6)
            True
        """
        theta = self._check_theta(theta, 2)
        return self.head(self.theta_features(theta)[:, None, :] + self.x_features(x)[None, :, :])

    def per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        """Returns the logits of ``C`` parameters for each of ``M`` observations.

        Arguments:
            theta: Parameters ``[M, C, d]``; ``theta[m]`` is paired with ``x[m]``.
            x: Observations ``[M, *x_shape]``.

        Returns:
            The logits ``[M, C]``.
        """
        theta = self._check_theta(theta, 3)
        if len(theta) != len(x):
            raise ValueError(f"theta [M, C, d] and x [M, ...]: expected the same M, got {len(theta)} and {len(x)}")
        return self.head(self.theta_features(theta) + self.x_features(x)[:, None, :])

    def extra_repr(self) -> str:
        return f"dim_theta={self.dim_theta}, x_shape={list(self.x_shape)}"

    def _check_theta(self, theta: Tensor, ndim: int) -> Tensor:
        if theta.ndim != ndim or theta.shape[-1] != self.dim_theta:
            expected = "[B, d]" if ndim == 2 else "[M, C, d]"
            raise ValueError(f"theta: expected shape {expected} with d = {self.dim_theta}, got {list(theta.shape)}")
        return theta

    def _check_x(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.x_shape:
            raise ValueError(f"x: expected shape [M, {', '.join(map(str, self.x_shape))}], got {list(x.shape)}")
        return x


def _infer_features(embedding_net: nn.Module, x_shape: tuple[int, ...]) -> int:
    """The output width of an embedding net, from one dummy pass in eval mode (no RNG use)."""
    was_training = embedding_net.training
    embedding_net.eval()
    try:
        with torch.no_grad():
            device = next((p.device for p in embedding_net.parameters()), torch.device("cpu"))
            out = embedding_net(torch.zeros(2, *x_shape, device=device))
    finally:
        embedding_net.train(was_training)
    return int(out.reshape(2, -1).shape[1])
