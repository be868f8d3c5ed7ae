r"""The source model :math:`q_\phi(\theta)`: a zuko spline flow kept inside the prior's support.

The flow lives on an unconstrained space :math:`u`; a fixed bijection maps it into
the support of the prior the estimators were trained under (a sigmoid and an affine
map for a box, the identity for an unbounded prior), so every sample of the source
is a parameter the estimators know, and samples are reparametrised (gradients flow
from :math:`\theta` to :math:`\phi`). The unconstrained space is standardised by the
prior's own image (location and scale of :math:`u` under the prior), so the
untrained source is close to the prior.

References:
    | Neural Spline Flows (Durkan et al., 2019)
    | https://arxiv.org/abs/1906.04032
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import zuko
from torch import Tensor, nn
from torch.distributions import (
    AffineTransform,
    ComposeTransform,
    Distribution,
    IndependentTransform,
    SigmoidTransform,
    Transform,
    TransformedDistribution,
    constraints,
)

from sbi_core.io import load_state, save_state

__all__ = ["SourceFlow", "SourceDistribution", "load_source", "support_of"]

_PRIOR_DRAWS = 10_000  # prior samples that set the standardisation of the unconstrained space


def support_of(prior: Distribution) -> dict[str, Any]:
    """Describes the prior's support as JSON: ``{"kind": "box", "low", "high"}`` or ``{"kind": "real"}``.

    Raises:
        ValueError: For a support the source cannot be mapped into (e.g. a simplex).

    Example:
        >>> from sbi.utils import BoxUniform
        >>> support_of(BoxUniform(torch.zeros(2), torch.ones(2)))
        {'kind': 'box', 'low': [0.0, 0.0], 'high': [1.0, 1.0]}
    """
    support = prior.support
    base = support.base_constraint if isinstance(support, constraints.independent) else support
    if isinstance(base, constraints.interval):
        dim = prior.event_shape[0]
        low = torch.as_tensor(base.lower_bound, dtype=torch.float32).expand(dim)
        high = torch.as_tensor(base.upper_bound, dtype=torch.float32).expand(dim)
        return {"kind": "box", "low": low.tolist(), "high": high.tolist()}
    if base is constraints.real or base is constraints.real_vector:
        return {"kind": "real"}
    raise ValueError(
        f"prior: unfolding maps its source into a box or onto the real line; this prior's support is {support}"
    )


class SourceDistribution(TransformedDistribution):
    """The source as a torch distribution: samples (reparametrised), log-density, the prior's support."""

    arg_constraints: dict = {}

    def __init__(self, base: Distribution, transforms: list[Transform], support: constraints.Constraint):
        super().__init__(base, transforms, validate_args=False)
        self._support = support

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self) -> constraints.Constraint:
        return self._support


class SourceFlow(nn.Module):
    r"""A neural spline flow :math:`q_\phi(\theta)` mapped into the prior's support.

    Calling it returns the distribution (:class:`SourceDistribution`): ``rsample`` for
    the fit, ``sample`` and ``log_prob`` for everything else.

    Arguments:
        dim_theta: The number of parameters ``d``.
        support: :func:`support_of` the prior.
        transforms: Spline transforms of the flow.
        hidden_features: Widths of each transform's hidden layers.
        bins: Spline bins.

    Example:
        >>> from sbi.utils import BoxUniform
        >>> prior = BoxUniform(-torch.ones(2), torch.ones(2))
        >>> source = SourceFlow.for_prior(prior, transforms=2, hidden_features=[16])
        >>> theta = source().rsample((5,))
        >>> bool(prior.support.check(theta).all())
        True
    """

    def __init__(
        self,
        dim_theta: int,
        support: dict[str, Any],
        transforms: int = 3,
        hidden_features: list[int] | tuple[int, ...] = (64, 64),
        bins: int = 8,
    ):
        super().__init__()
        self.hyperparameters = {
            "kind": "neb_source",
            "dim_theta": int(dim_theta),
            "support": support,
            "transforms": int(transforms),
            "hidden_features": [int(h) for h in hidden_features],
            "bins": int(bins),
        }
        self.flow = zuko.flows.NSF(dim_theta, 0, bins=bins, transforms=transforms, hidden_features=list(hidden_features))
        _start_at_identity(self.flow)
        self.register_buffer("loc", torch.zeros(dim_theta))
        self.register_buffer("scale", torch.ones(dim_theta))
        if support["kind"] == "box":
            self.register_buffer("low", torch.tensor(support["low"], dtype=torch.float32))
            self.register_buffer("high", torch.tensor(support["high"], dtype=torch.float32))

    @classmethod
    def for_prior(cls, prior: Distribution, **architecture: Any) -> SourceFlow:
        """A source in the prior's support, its unconstrained space standardised by the prior."""
        source = cls(prior.event_shape[0], support_of(prior), **architecture)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            u = source._to_support().inv(source._inside(prior.sample((_PRIOR_DRAWS,)).float()))
        source.loc.copy_(u.mean(0))
        source.scale.copy_(u.std(0).clamp_min(1e-3))
        return source

    @property
    def dim_theta(self) -> int:
        return self.hyperparameters["dim_theta"]

    def forward(self) -> SourceDistribution:
        """The distribution :math:`q_\\phi`, on the weights' device."""
        transforms = [AffineTransform(self.loc, self.scale, event_dim=1), self._to_support()]
        return SourceDistribution(self.flow(), transforms, self._support_constraint())

    def _to_support(self) -> Transform:
        if self.hyperparameters["support"]["kind"] == "real":
            return IndependentTransform(AffineTransform(0.0, 1.0), 1)
        return ComposeTransform([
            IndependentTransform(SigmoidTransform(), 1),
            AffineTransform(self.low, self.high - self.low, event_dim=1),
        ])

    def _support_constraint(self) -> constraints.Constraint:
        if self.hyperparameters["support"]["kind"] == "real":
            return constraints.real_vector
        return constraints.independent(constraints.interval(self.low, self.high), 1)

    def _inside(self, theta: Tensor) -> Tensor:
        """Keeps points strictly inside a box (the logit of its edge is infinite)."""
        if self.hyperparameters["support"]["kind"] == "real":
            return theta
        margin = 1e-6 * (self.high - self.low)
        return torch.minimum(torch.maximum(theta, self.low + margin), self.high - margin)

    def save(self, path: str | Path, provenance: dict | None = None) -> None:
        """Saves the state dict and JSON hyperparameters (loads with ``torch.load(weights_only=True)``)."""
        state = {key: value.detach().cpu() for key, value in self.state_dict().items()}
        save_state(path, state, self.hyperparameters, provenance)


def _start_at_identity(flow: zuko.flows.Flow) -> None:
    """Zeroes what sets each spline (the hyper-network's last layer; a 1-d flow's free
    parameters), so the untrained flow is its standard normal base: zuko's random start
    is far from it in one dimension, and the fit starts from the prior's image instead."""
    for transform in flow.transform.transforms:
        if hasattr(transform, "hyper"):
            nn.init.zeros_(transform.hyper[-1].weight)
            nn.init.zeros_(transform.hyper[-1].bias)
        else:
            for parameter in transform.phi:
                nn.init.zeros_(parameter)


def load_source(path: str | Path, device: str | torch.device = "cpu") -> SourceFlow:
    """Rebuilds a :class:`SourceFlow` saved by :meth:`SourceFlow.save`.

    Raises:
        ValueError: If the file is not a saved source (e.g. an estimator file).
    """
    state, hyperparameters = load_state(path)
    if not isinstance(hyperparameters, dict) or hyperparameters.get("kind") != "neb_source":
        raise ValueError(f"{path}: not a fitted unfolding source (no 'kind: neb_source' in its hyperparameters)")
    architecture = {key: hyperparameters[key] for key in ("transforms", "hidden_features", "bins")}
    source = SourceFlow(hyperparameters["dim_theta"], hyperparameters["support"], **architecture)
    source.load_state_dict(state)
    return source.to(device).eval()
