r"""The one estimator interface: every trained method is a differentiable log-ratio with a posterior.

.. math:: \log r(\theta, x) = \log p(x | \theta) - \log p(x)

Each method estimates it its own way (NPE: :math:`\log q(\theta | x) - \log p(\theta)`;
NLE: :math:`\log q(x | \theta)`, up to :math:`\log p(x)`; the ratio family: the
classifier logit), and the rest of the house (samplers, calibration, limits,
unfolding, design) sees one object, :class:`Estimator`, and never asks which method
made it. What differs by method is said once, in :mod:`sbi_core.estimators.registry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from sbi_core.estimators.posterior import PosteriorEstimate, sampler_posterior
from sbi_core.estimators.registry import MethodSpec, method_spec
from sbi_core.io import save_state

__all__ = ["Estimator"]


class Estimator(nn.Module):
    r"""A trained estimator of any method: its log-ratio, its batched posterior, its artifact.

    The log-ratio :math:`f(\theta, x)` is evaluated on the estimator's device,
    differentiably in ``theta`` and ``x`` (no ``torch.no_grad`` inside), in two
    layouts that the samplers (:class:`~sbi_core.sampling.LogRatioModel`) and the
    limits use:

    * :meth:`all_pairs`: every ``theta [N, d]`` with every ``x [M, *x_shape]``, ``-> [N, M]``;
    * :meth:`per_observation`: ``C`` parameters per observation,
      ``theta [M, C, d]`` with ``x [M, *x_shape]``, ``-> [M, C]``.

    :meth:`log_ratio` (and calling the estimator) picks the layout from ``theta``'s
    rank. The log-ratio is exact up to a constant per observation: NLE's is
    :math:`\log q(x | \theta)`, which differs from the log-ratio by :math:`\log p(x)`;
    NPE's is ``-inf`` outside the prior's support.

    Subclasses (one per family, :mod:`sbi_core.estimators.npe`, ``nle``, ``nre``)
    implement :meth:`_all_pairs`, :meth:`_per_observation` and
    :meth:`from_hyperparameters`; NPE also its posterior.

    Arguments:
        network: The trained network (sbi's flow, or a :class:`~sbi_core.ratio.RatioEstimator`).
        hyperparameters: JSON-able; ``method`` (a name in the registry), ``dim_theta``
            and ``x_shape``, and whatever rebuilds the network. Callers may add
            descriptive entries (e.g. ``task``) before :meth:`save`.
        prior: The prior the estimator was trained under (on the CPU); NPE's log-ratio
            and every posterior need it.

    Attributes:
        spec: The method's registry entry (:class:`~sbi_core.estimators.registry.MethodSpec`).
        dim_theta: The number of parameters ``d``.
        x_shape: The shape of one observation.
    """

    def __init__(self, network: nn.Module, hyperparameters: dict[str, Any], prior: Distribution | None = None):
        super().__init__()
        self.network = network.eval()
        self.hyperparameters = dict(hyperparameters)
        self.spec: MethodSpec = method_spec(self.hyperparameters.get("method"))
        self.dim_theta = int(self.hyperparameters["dim_theta"])
        self.x_shape = tuple(int(n) for n in self.hyperparameters["x_shape"])
        self.prior = prior
        self.eval()

    # ------------------------------------------------------------------ what the method is

    @property
    def method(self) -> str:
        """The method's name, e.g. ``nre``."""
        return self.spec.name

    @property
    def is_likelihood(self) -> bool:
        """Whether the log-ratio is a log-likelihood up to a constant per x (usable for CLs limits)."""
        return self.spec.is_likelihood

    @property
    def device(self) -> torch.device:
        """The device of the network's weights, where the log-ratio is evaluated."""
        return next(self.network.parameters()).device

    @classmethod
    def from_hyperparameters(
        cls, hyperparameters: dict[str, Any], prior: Distribution | None = None, **kwargs: Any
    ) -> Estimator:
        """Builds the untrained architecture that the hyperparameters describe (on the CPU).

        Arguments:
            hyperparameters: As :attr:`hyperparameters` holds them.
            prior: The prior.
            kwargs: What the hyperparameters cannot describe, e.g. a ratio estimator's
                ``embedding_net``.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ the log-ratio

    def log_ratio(self, theta: Tensor, x: Tensor) -> Tensor:
        r"""Returns :math:`\log r(\theta, x)` up to a constant per observation.

        Arguments:
            theta: ``[N, d]`` for all pairs, or ``[M, C, d]`` for ``C`` parameters per observation.
            x: Observations ``[M, *x_shape]``.

        Returns:
            ``[N, M]`` (:meth:`all_pairs`) or ``[M, C]`` (:meth:`per_observation`), on the
            estimator's device.
        """
        if theta.ndim == 3:
            return self.per_observation(theta, x)
        return self.all_pairs(theta, x)

    def forward(self, theta: Tensor, x: Tensor) -> Tensor:
        """:meth:`log_ratio`."""
        return self.log_ratio(theta, x)

    def all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        r"""Returns :math:`f(\theta_i, x_j)` for every pair.

        Arguments:
            theta: Parameters ``[N, d]``.
            x: Observations ``[M, *x_shape]``.

        Returns:
            ``[N, M]``, entry ``[i, j] = f(theta_i, x_j)``; for joint draws, the diagonal
            holds the joint pairs.
        """
        theta, x = self._inputs(theta, x, 2)
        return self._all_pairs(theta, x)

    def per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        r"""Returns :math:`f(\theta_{mc}, x_m)` for ``C`` parameters per observation.

        Arguments:
            theta: Parameters ``[M, C, d]``; ``theta[m]`` is paired with ``x[m]``.
            x: Observations ``[M, *x_shape]``.

        Returns:
            ``[M, C]``.
        """
        theta, x = self._inputs(theta, x, 3)
        if len(theta) != len(x):
            raise ValueError(f"theta [M, C, d] and x [M, ...]: expected the same M, got {len(theta)} and {len(x)}")
        return self._per_observation(theta, x)

    def _all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inputs(self, theta: Tensor, x: Tensor, ndim: int) -> tuple[Tensor, Tensor]:
        """Checks the shapes and moves theta and x to the weights' device and float type."""
        if theta.ndim != ndim or theta.shape[-1] != self.dim_theta:
            expected = "[N, d]" if ndim == 2 else "[M, C, d]"
            raise ValueError(f"theta: expected shape {expected} with d = {self.dim_theta}, got {list(theta.shape)}")
        if tuple(x.shape[1:]) != self.x_shape:
            raise ValueError(f"x: expected shape [M, {', '.join(map(str, self.x_shape))}], got {list(x.shape)}")
        anchor = next(self.network.parameters())
        return theta.to(anchor.device, anchor.dtype), x.to(anchor.device, anchor.dtype)

    # ------------------------------------------------------------------ the posterior

    def posterior(self, sampling: dict[str, Any]) -> PosteriorEstimate:
        """The batched posterior (sampler and log-density), on the estimator's device.

        NLE and the ratio methods sample by our batched SIR or MCMC
        (:func:`~sbi_core.estimators.posterior.sampler_posterior`), set by the
        config's ``sampling`` keys that :attr:`spec` lists; NPE samples its flow.

        Arguments:
            sampling: The config's ``sampling`` block.
        """
        return sampler_posterior(self, self.require_prior(), sampling)

    def require_prior(self) -> Distribution:
        """The prior, or a ValueError saying how to give it."""
        if self.prior is None:
            raise ValueError(
                f"prior: this {self.method} estimator has no prior; pass it to "
                "load_estimator(path, prior=...) or set estimator.prior"
            )
        return self.prior

    # ------------------------------------------------------------------ the artifact

    def save(self, path: str | Path, provenance: dict | None = None) -> None:
        """Saves the network's state dict (CPU tensors) and JSON hyperparameters, atomically.

        The file loads with ``torch.load(weights_only=True)`` and
        :func:`~sbi_core.estimators.load_estimator` rebuilds the estimator from it.

        Arguments:
            path: The ``.pt`` file.
            provenance: What produced it (:func:`sbi_core.io.provenance`), stored as JSON.
        """
        state_dict = {key: value.detach().cpu() for key, value in self.network.state_dict().items()}
        save_state(path, state_dict, self.hyperparameters, provenance)

    def extra_repr(self) -> str:
        return f"method={self.method}, dim_theta={self.dim_theta}, x_shape={list(self.x_shape)}"
