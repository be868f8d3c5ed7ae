r"""Priors of HistFactory parameters: from their constraint terms, or as the config overrides them.

A constrained parameter's default prior is the posterior of its constraint term
given the nominal auxiliary datum :math:`a` under a flat prior:

- normal constraint (normsys, histosys: :math:`a = 0`, :math:`\sigma = 1`; lumi:
  the measurement's nominal and :math:`\sigma`; staterror: :math:`a = 1` and the
  bin's relative uncertainty): :math:`N(a, \sigma)`, truncated to :math:`(0, \infty)`
  and renormalised for parameters that multiply a yield (lumi, staterror);
- Poisson constraint (shapesys, :math:`a = \tau = (b / \delta_b)^2`):
  :math:`\mathrm{Gamma}(a + 1, \text{rate}\ \tau)`.

A free parameter (normfactor POI, other normfactors, shapefactors) is uniform on
pyhf's suggested bounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, Gamma, Independent, Normal, Uniform, constraints

from sbi_core.errors import ConfigError
from sbi_core.tasks.histfactory.parameters import HistFactoryParameter

__all__ = ["TruncatedNormal", "parameter_prior", "histfactory_prior", "PRIOR_OVERRIDES"]

# Allowed keys per override type (besides 'type').
PRIOR_OVERRIDES: dict[str, tuple[str, ...]] = {"uniform": ("low", "high"), "normal": ("mean", "std")}


class TruncatedNormal(Distribution):
    r"""A normal :math:`N(\mu, \sigma)` restricted to :math:`(\text{low}, \infty)` and renormalised.

    Samples by inverting the upper-tail CDF in float64, which stays accurate however
    little or much mass the truncation removes.

    Arguments:
        loc: :math:`\mu`.
        scale: :math:`\sigma > 0`.
        low: The lower end of the support (excluded).

    Example:
        >>> prior = TruncatedNormal(torch.tensor([1.0]), torch.tensor([0.8]), 0.0)
        >>> bool((prior.sample((1000,)) > 0).all())
        True
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = False

    def __init__(self, loc: Tensor, scale: Tensor, low: float, validate_args: bool | None = None):
        self.loc, self.scale = torch.broadcast_tensors(torch.as_tensor(loc), torch.as_tensor(scale))
        self.low = float(low)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.greater_than(self.low)

    def _alpha(self) -> Tensor:
        """The standardised truncation point, float64."""
        return (self.low - self.loc.double()) / self.scale.double()

    def _log_mass(self) -> Tensor:
        """The log of the normal's mass above ``low``."""
        return torch.special.log_ndtr(-self._alpha())

    @property
    def mean(self) -> Tensor:
        hazard = torch.exp(Normal(0.0, 1.0).log_prob(self._alpha()) - self._log_mass())
        return (self.loc.double() + self.scale.double() * hazard).to(self.loc.dtype)

    @property
    def variance(self) -> Tensor:
        alpha = self._alpha()
        hazard = torch.exp(Normal(0.0, 1.0).log_prob(alpha) - self._log_mass())
        factor = 1 + alpha * hazard - hazard**2
        return (self.scale.double() ** 2 * factor).to(self.loc.dtype)

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            # 1 - U is in (0, 1]: the upper-tail probability is never 0.
            tail = (1 - torch.rand(shape, dtype=torch.float64)) * self._log_mass().exp()
            value = self.loc.double() - self.scale.double() * torch.special.ndtri(tail)
        return value.to(self.loc.dtype)

    def to(self, device: str | torch.device) -> TruncatedNormal:
        """Moves the parameters to ``device`` in place (how sbi moves a prior); returns ``self``."""
        self.loc, self.scale = self.loc.to(device), self.scale.to(device)
        return self

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        log_density = Normal(self.loc.double(), self.scale.double()).log_prob(value.double()) - self._log_mass()
        log_density = torch.where(value > self.low, log_density, -torch.inf)
        return log_density.to(torch.promote_types(value.dtype, self.loc.dtype))


def parameter_prior(parameter: HistFactoryParameter) -> Distribution:
    """Returns the default prior of one parameter (see the module docstring), batch shape ``(1,)``.

    Arguments:
        parameter: The parameter, as :func:`describe_parameters` lists it.

    Returns:
        A float32 distribution with batch shape ``(1,)``.

    Example:
        >>> model = pyhf.simplemodels.uncorrelated_background([12.0], [50.0], [5.0])
        >>> parameter_prior(describe_parameters(model)[1]).mean  # Gamma(101, 100)
        tensor([1.0100])
    """
    def tensor(value: float) -> Tensor:
        return torch.tensor([value], dtype=torch.float32)

    if parameter.constraint is None:
        low, high = parameter.bounds
        return Uniform(tensor(low), tensor(high))
    if parameter.constraint == "poisson":
        return Gamma(tensor(parameter.auxdata + 1), tensor(parameter.width))
    if parameter.multiplicative:
        return TruncatedNormal(tensor(parameter.auxdata), tensor(parameter.width), 0.0)
    return Normal(tensor(parameter.auxdata), tensor(parameter.width))


def histfactory_prior(
    parameters: Sequence[HistFactoryParameter],
    overrides: dict[str, Any],
    where: str,
    source: str = "the model",
) -> Distribution:
    """Returns the joint prior of the inferred parameters: independent, float32, event shape ``(d,)``.

    Arguments:
        parameters: The inferred parameters, in order.
        overrides: ``{name: {type: uniform, low, high} | {type: normal, mean, std}}``
            replacing the default prior of inferred parameters by name.
        where: The dotted config key of ``overrides``, for error messages.
        source: What the parameters belong to (e.g. the workspace file), for error messages.

    Returns:
        sbi's ``MultipleIndependent`` of the parameters' priors (for one parameter, its
        prior as an ``Independent`` with event shape ``(1,)``).

    Raises:
        ConfigError: Naming the override key at fault.

    Example:
        >>> overrides = {"mu": {"type": "uniform", "low": 0, "high": 5}}
        >>> prior = histfactory_prior(describe_parameters(model), overrides, "p")
        >>> prior.event_shape
        torch.Size([2])
    """
    names = [p.name for p in parameters]
    for name in overrides:
        if name not in names:
            raise ConfigError(
                f"{where}.{name}: not an inferred parameter of {source}; the inferred parameters "
                f"are {', '.join(names)} (add it to 'parameters' to infer it)"
            )
    components = [
        _override(overrides[p.name], f"{where}.{p.name}") if p.name in overrides else parameter_prior(p)
        for p in parameters
    ]
    if len(components) == 1:
        return Independent(components[0], 1)
    from sbi.utils import MultipleIndependent  # here, not at import: sbi.utils costs as much as torch

    return MultipleIndependent(components)


def _override(spec: Any, where: str) -> Distribution:
    """Builds a prior from ``{type: uniform, low, high}`` or ``{type: normal, mean, std}``."""
    if not isinstance(spec, dict) or spec.get("type") not in PRIOR_OVERRIDES:
        raise ConfigError(
            f"{where}: expected {{type: uniform, low, high}} or {{type: normal, mean, std}}, got {spec!r}"
        )
    allowed = PRIOR_OVERRIDES[spec["type"]]
    for key in spec:
        if key != "type" and key not in allowed:
            raise ConfigError(
                f"{where}.{key}: unknown key for a {spec['type']} prior; allowed: type, {', '.join(allowed)}"
            )
    values = []
    for key in allowed:
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}.{key}: expected a finite number, got {value!r}")
        values.append(torch.tensor([float(value)], dtype=torch.float32))
    first, second = values
    if spec["type"] == "uniform":
        if second <= first:
            raise ConfigError(f"{where}.high: must exceed low = {spec['low']:g}, got {spec['high']:g}")
        return Uniform(first, second)
    if second <= 0:
        raise ConfigError(f"{where}.std: must be > 0, got {spec['std']:g}")
    return Normal(first, second)
