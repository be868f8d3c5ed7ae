r"""True source distributions for unfolding closure tests, and the config spec naming them.

Unfolding (neural empirical Bayes) fits the source :math:`p^*(\theta)` that generated a
population of observations :math:`x_i \sim p(x \mid \theta_i)`,
:math:`\theta_i \sim p^*`. A closure test draws the population from a known source and
compares the fit to it. Every source here lies inside its task's prior box (the
estimators are trained there), has event shape ``(d,)``, is float32, and is sampled
exactly (no MCMC, no grid): truncated Gaussians and the power law by inverting their
CDFs, in float64.

The NEB paper's own two-moons and SLCP populations were drawn from the tasks' uniform
priors (``sample_prior`` in its code), which makes a closure test pass for a fit that
never moves from the training prior; those are kept as ``two_moons_neb`` and
``slcp_neb`` to reproduce the paper, and ``two_moons`` and ``slcp`` are non-uniform.

References:
    | Neural Empirical Bayes: Source Distribution Estimation and its Applications to
    | Simulation-Based Inference (Vandegar, Kagan, Wehenkel and Louppe, AISTATS 2021)
    | https://arxiv.org/abs/2011.05836
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from sbi_core.errors import ConfigError
from sbi_core.tasks import falling_spectrum, gaussian_smearing, slcp, two_moons
from sbi_core.tasks.box import BoxUniform
from sbi_core.tasks.priors import prior_from_config

__all__ = [
    "BUILTIN_SOURCES",
    "TruncatedGaussianMixture",
    "TruncatedPowerLaw",
    "source_from_config",
]

# gaussian_smearing: N(1.0, 1.5^2) truncated to the prior box [-5, 5]. The box is
# 2.67 standard deviations above the mean, so truncation removes 0.39% of the mass
# (not negligible: 10,000 untruncated draws would leave the box ~39 times) and shifts
# the mean to 0.983; the truncation is exact.
GAUSSIAN_SMEARING_SOURCE_MEAN = 1.0
GAUSSIAN_SMEARING_SOURCE_STD = 1.5

# falling_spectrum: dN/dE ~ E^-2.5 on the prior's [10, 100] GeV.
FALLING_SPECTRUM_SOURCE_INDEX = 2.5

# two_moons: (weight, mean, std) of diagonal Gaussians in U(-1, 1)^2, each also mirrored
# by R(theta_1, theta_2) = (-theta_2, -theta_1) with the same weight. The simulator sees
# theta_1 + theta_2 only through its absolute value, so a source is identifiable only
# up to R; this one is R-symmetric (compare a fit after symmetrising it). The two base
# components differ in the identifiable direction theta_2 - theta_1, so the observed
# population is bimodal.
TWO_MOONS_SOURCE_COMPONENTS: tuple[
    tuple[float, tuple[float, ...], tuple[float, ...]], ...
] = (
    (0.6, (0.15, 0.55), (0.15, 0.20)),
    (0.4, (0.40, -0.15), (0.20, 0.15)),
)

# slcp: (weight, mean, std) of diagonal Gaussians in U(-3, 3)^5, each also reflected in
# the signs of theta_3 and theta_4 (4 copies of a quarter of the weight). The simulator
# uses theta_3^2 and theta_4^2, so a source is identifiable only up to those signs; this
# one is symmetric under them (compare |theta_3|, |theta_4|, or symmetrise the fit).
SLCP_SOURCE_COMPONENTS: tuple[
    tuple[float, tuple[float, ...], tuple[float, ...]], ...
] = (
    (0.6, (-0.7, -1.0, 1.0, 0.9, 0.6), (0.5, 0.6, 0.3, 0.3, 0.4)),
    (0.4, (1.2, 1.0, 1.8, 1.5, -1.0), (0.6, 0.5, 0.4, 0.4, 0.5)),
)

# source_from_config draws this many samples, on a forked generator with this seed, to
# check that a source stays inside the prior's support.
SUPPORT_CHECK_SAMPLES = 10_000
SUPPORT_CHECK_SEED = 0

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _normal_pdf(z: Tensor) -> Tensor:
    return torch.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


def _interval_mass(alpha: Tensor, beta: Tensor) -> Tensor:
    """Returns Phi(beta) - Phi(alpha), computed in the tail that keeps its precision."""
    upper = alpha > 0
    return torch.where(
        upper,
        torch.special.ndtr(-alpha) - torch.special.ndtr(-beta),
        torch.special.ndtr(beta) - torch.special.ndtr(alpha),
    )


def _box_support(low: Tensor, high: Tensor) -> constraints.Constraint:
    return constraints.independent(constraints.interval(low, high), 1)


class TruncatedGaussianMixture(Distribution):
    r"""A mixture of diagonal Gaussians, truncated as a whole to a box.

    The density is :math:`\sum_k w_k N(\theta; m_k, \mathrm{diag}(s_k^2)) / Z` inside
    the box and 0 outside, with :math:`Z = \sum_k w_k \prod_i [\Phi(\beta_{ki}) -
    \Phi(\alpha_{ki})]`, :math:`\alpha_{ki} = (l_i - m_{ki}) / s_{ki}`,
    :math:`\beta_{ki} = (h_i - m_{ki}) / s_{ki}`, computed once in float64. Sampling is
    exact: a component with probability :math:`w_k Z_k / Z`, then each coordinate by
    inverting its truncated normal CDF.

    Arguments:
        weights: Mixture weights :math:`w_k`, shape ``[K]``, positive (normalised here).
        means: Component means, shape ``[K, d]``.
        stds: Component standard deviations, shape ``[K, d]``, positive.
        low: The box's lower corner, shape ``[d]``.
        high: The box's upper corner, shape ``[d]``, above ``low``.
        validate_args: As for torch distributions.

    Raises:
        ValueError: If the shapes or values are not as above.

    Example:
        >>> source = TruncatedGaussianMixture(
        ...     torch.ones(1), torch.zeros(1, 2), torch.ones(1, 2), -torch.ones(2), torch.ones(2)
        ... )
        >>> source.sample((3,)).shape
        torch.Size([3, 2])
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = False

    def __init__(
        self,
        weights: Tensor,
        means: Tensor,
        stds: Tensor,
        low: Tensor,
        high: Tensor,
        validate_args: bool | None = None,
    ) -> None:
        weights, means, stds = (
            torch.as_tensor(t, dtype=torch.float64) for t in (weights, means, stds)
        )
        low, high = (torch.as_tensor(t, dtype=torch.float64) for t in (low, high))
        if (
            means.ndim != 2
            or stds.shape != means.shape
            or weights.shape != means.shape[:1]
        ):
            raise ValueError(
                "TruncatedGaussianMixture: expected weights [K], means [K, d] and stds "
                f"[K, d]; got {list(weights.shape)}, {list(means.shape)}, {list(stds.shape)}"
            )
        d = means.shape[1]
        if low.shape != (d,) or high.shape != (d,) or not (high > low).all():
            raise ValueError(
                f"TruncatedGaussianMixture: low and high must have shape [{d}] with high > low"
            )
        if not (weights > 0).all() or not (stds > 0).all():
            raise ValueError(
                "TruncatedGaussianMixture: weights and stds must be positive"
            )
        self._means, self._stds = means, stds
        self._alpha = (low - means) / stds
        self._beta = (high - means) / stds
        self._masses = _interval_mass(self._alpha, self._beta)  # [K, d]
        weighted = weights / weights.sum() * self._masses.prod(dim=1)
        self._log_weights = torch.log(weights / weights.sum())
        self._log_normalizer = torch.log(weighted.sum())
        self._component_probs = weighted / weighted.sum()
        self.low, self.high = low.float(), high.float()
        super().__init__(torch.Size(), torch.Size([d]), validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:
        """The box ``[low, high]``."""
        return _box_support(self.low, self.high)

    @property
    def normalizer(self) -> float:
        """The mass :math:`Z` the untruncated mixture puts inside the box."""
        return float(self._log_normalizer.exp())

    def _component_moments(self) -> tuple[Tensor, Tensor]:
        """Per-component, per-coordinate means and variances, float64 ``[K, d]``."""
        pa, pb = _normal_pdf(self._alpha), _normal_pdf(self._beta)
        shift = (pa - pb) / self._masses
        spread = (self._alpha * pa - self._beta * pb) / self._masses
        mean = self._means + self._stds * shift
        variance = self._stds**2 * (1.0 + spread - shift**2)
        return mean, variance

    @property
    def mean(self) -> Tensor:
        """The exact mean, shape ``[d]``, float32."""
        mean, _ = self._component_moments()
        return (self._component_probs[:, None] * mean).sum(dim=0).float()

    @property
    def variance(self) -> Tensor:
        """The exact per-coordinate variance, shape ``[d]``, float32."""
        mean, variance = self._component_moments()
        probs = self._component_probs[:, None]
        total_mean = (probs * mean).sum(dim=0)
        second = (probs * (variance + mean**2)).sum(dim=0)
        return (second - total_mean**2).float()

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> Tensor:
        """Draws exact samples from torch's global generator.

        Arguments:
            sample_shape: The leading shape.

        Returns:
            Samples, shape ``sample_shape + (d,)``, float32, inside the box.
        """
        shape = self._extended_shape(torch.Size(sample_shape))
        n, d = math.prod(sample_shape), self._means.shape[1]
        with torch.no_grad():
            if n == 0:
                return torch.empty(shape)
            k = torch.multinomial(self._component_probs, n, replacement=True)
            alpha, beta = self._alpha[k], self._beta[k]
            # Invert the CDF in the tail nearer the mean: reflect boxes above it.
            reflect = alpha > 0
            lo = torch.where(reflect, -beta, alpha)
            hi = torch.where(reflect, -alpha, beta)
            cdf_lo, cdf_hi = torch.special.ndtr(lo), torch.special.ndtr(hi)
            u = cdf_lo + (cdf_hi - cdf_lo) * torch.rand(n, d, dtype=torch.float64)
            z = torch.special.ndtri(u)
            z = torch.where(reflect, -z, z)
            theta = (self._means[k] + self._stds[k] * z).float()
            theta = torch.minimum(torch.maximum(theta, self.low), self.high)
        return theta.reshape(shape)

    def log_prob(self, value: Tensor) -> Tensor:
        """The exact log-density.

        It is ``-inf`` outside the box, or raises ``ValueError`` there if the
        distribution validates its arguments (off by default once sbi is imported).

        Arguments:
            value: Points, shape ``[..., d]``.

        Returns:
            The log-densities, shape ``[...]``, float32.
        """
        if self._validate_args:
            self._validate_sample(value)
        v = value.to(torch.float64)
        z = (v[..., None, :] - self._means) / self._stds  # [..., K, d]
        log_components = (-0.5 * z**2 - torch.log(self._stds) - _LOG_SQRT_2PI).sum(
            dim=-1
        )
        log_density = torch.logsumexp(self._log_weights + log_components, dim=-1)
        inside = ((v >= self.low.double()) & (v <= self.high.double())).all(dim=-1)
        log_density = torch.where(inside, log_density - self._log_normalizer, -math.inf)
        return log_density.float()


class TruncatedPowerLaw(Distribution):
    r"""A 1-d power law :math:`p(E) \propto E^{-\gamma}` on ``[low, high]``, ``0 < low``.

    The log-density is normalised exactly, by :math:`I = \int_{low}^{high} E^{-\gamma}
    dE`, and sampling inverts the CDF, both in float64.

    Arguments:
        index: The spectral index :math:`\gamma` (any real).
        low: The lower edge, positive.
        high: The upper edge, above ``low``.
        validate_args: As for torch distributions.

    Raises:
        ValueError: If ``0 < low < high`` does not hold.

    Example:
        >>> spectrum = TruncatedPowerLaw(2.5, 10.0, 100.0)
        >>> spectrum.sample((4,)).shape
        torch.Size([4, 1])
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = False

    def __init__(
        self, index: float, low: float, high: float, validate_args: bool | None = None
    ) -> None:
        if not 0 < low < high:
            raise ValueError(
                f"TruncatedPowerLaw: need 0 < low < high, got {low}, {high}"
            )
        self.index, self._low, self._high = float(index), float(low), float(high)
        self._log_normalizer = math.log(self._integral(-self.index))
        self.low = torch.tensor([low], dtype=torch.float32)
        self.high = torch.tensor([high], dtype=torch.float32)
        super().__init__(torch.Size(), torch.Size([1]), validate_args=validate_args)

    def _integral(self, power: float) -> float:
        """Returns the integral of E^power over [low, high]."""
        if power == -1.0:
            return math.log(self._high / self._low)
        q = power + 1.0
        return (self._high**q - self._low**q) / q

    @property
    def support(self) -> constraints.Constraint:
        """The interval ``[low, high]``."""
        return _box_support(self.low, self.high)

    @property
    def mean(self) -> Tensor:
        """The exact mean, shape ``[1]``, float32."""
        norm = self._integral(-self.index)
        return torch.tensor(
            [self._integral(1.0 - self.index) / norm], dtype=torch.float32
        )

    @property
    def variance(self) -> Tensor:
        """The exact variance, shape ``[1]``, float32."""
        norm = self._integral(-self.index)
        mean = self._integral(1.0 - self.index) / norm
        second = self._integral(2.0 - self.index) / norm
        return torch.tensor([second - mean**2], dtype=torch.float32)

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> Tensor:
        """Draws exact samples from torch's global generator.

        Arguments:
            sample_shape: The leading shape.

        Returns:
            Samples, shape ``sample_shape + (1,)``, float32, inside ``[low, high]``.
        """
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            u = torch.rand(shape, dtype=torch.float64)
            if self.index == 1.0:
                energy = self._low * (self._high / self._low) ** u
            else:
                p = 1.0 - self.index
                lo, hi = self._low**p, self._high**p
                energy = (lo + u * (hi - lo)) ** (1.0 / p)
            energy = energy.float()
        return torch.minimum(torch.maximum(energy, self.low), self.high)

    def log_prob(self, value: Tensor) -> Tensor:
        """The exact log-density.

        It is ``-inf`` outside ``[low, high]``, or raises ``ValueError`` there if the
        distribution validates its arguments (off by default once sbi is imported).

        Arguments:
            value: Points, shape ``[..., 1]``.

        Returns:
            The log-densities, shape ``[...]``, float32.
        """
        if self._validate_args:
            self._validate_sample(value)
        v = value.to(torch.float64)[..., 0]
        inside = (v >= self._low) & (v <= self._high)
        log_density = (
            -self.index * torch.log(v.clamp(min=self._low)) - self._log_normalizer
        )
        return torch.where(inside, log_density, -math.inf).float()


def _mixture_from_components(
    components: Sequence[tuple[float, Sequence[float], Sequence[float]]],
    mirrors: Sequence[Callable[[Tensor], Tensor]],
    bound: float,
) -> TruncatedGaussianMixture:
    """Builds a box-truncated mixture from base components and their images.

    Each base component ``(weight, mean, std)`` appears once per map in ``mirrors``
    (the identity included), with ``weight / len(mirrors)``; a map acts on the mean and
    permutes the stds the way it permutes coordinates (signs do not matter for stds).
    """
    weights, means, stds = [], [], []
    for weight, mean, std in components:
        mean_t = torch.tensor(mean, dtype=torch.float64)
        std_t = torch.tensor(std, dtype=torch.float64)
        for mirror in mirrors:
            weights.append(weight / len(mirrors))
            means.append(mirror(mean_t))
            stds.append(mirror(std_t).abs())
    d = len(components[0][1])
    return TruncatedGaussianMixture(
        torch.tensor(weights),
        torch.stack(means),
        torch.stack(stds),
        -bound * torch.ones(d),
        bound * torch.ones(d),
    )


def gaussian_smearing_source() -> TruncatedGaussianMixture:
    r"""Returns the ``gaussian_smearing`` source: :math:`N(1, 1.5^2)` truncated to ``[-5, 5]``.

    The truncation removes 0.39% of the Gaussian's mass (the box's upper edge is 2.67
    standard deviations above the mean), so it is applied exactly rather than ignored;
    the mean is 0.983.
    """
    return TruncatedGaussianMixture(
        torch.ones(1),
        torch.tensor([[GAUSSIAN_SMEARING_SOURCE_MEAN]]),
        torch.tensor([[GAUSSIAN_SMEARING_SOURCE_STD]]),
        torch.tensor([gaussian_smearing.PRIOR_LOW]),
        torch.tensor([gaussian_smearing.PRIOR_HIGH]),
    )


def falling_spectrum_source() -> TruncatedPowerLaw:
    r"""Returns the ``falling_spectrum`` source: :math:`E^{-2.5}` on ``[10, 100]`` GeV."""
    return TruncatedPowerLaw(
        FALLING_SPECTRUM_SOURCE_INDEX,
        falling_spectrum.ENERGY_MIN,
        falling_spectrum.ENERGY_MAX,
    )


def two_moons_source() -> TruncatedGaussianMixture:
    r"""Returns the ``two_moons`` source: 4 truncated Gaussians in :math:`U(-1, 1)^2`.

    Two base components (``TWO_MOONS_SOURCE_COMPONENTS``) and their mirror images under
    :math:`(\theta_1, \theta_2) \mapsto (-\theta_2, -\theta_1)`, the simulator's symmetry.
    """
    return _mixture_from_components(
        TWO_MOONS_SOURCE_COMPONENTS,
        (lambda t: t, lambda t: -t.flip(0)),
        two_moons.PRIOR_BOUND,
    )


def _slcp_flip(signs: tuple[float, float]) -> Callable[[Tensor], Tensor]:
    factor = torch.tensor([1.0, 1.0, signs[0], signs[1], 1.0], dtype=torch.float64)
    return lambda t: t * factor


def slcp_source() -> TruncatedGaussianMixture:
    r"""Returns the ``slcp`` source: 8 truncated Gaussians in :math:`U(-3, 3)^5`.

    Two base components (``SLCP_SOURCE_COMPONENTS``) and their reflections in the signs
    of :math:`\theta_3` and :math:`\theta_4`, the simulator's symmetries.
    """
    flips = [_slcp_flip(s) for s in itertools.product((1.0, -1.0), repeat=2)]
    return _mixture_from_components(SLCP_SOURCE_COMPONENTS, flips, slcp.PRIOR_BOUND)


def two_moons_neb_source() -> Distribution:
    r"""Returns the NEB paper's two-moons source: the task's prior :math:`U(-1, 1)^2`."""
    return BoxUniform(
        -two_moons.PRIOR_BOUND * torch.ones(2), two_moons.PRIOR_BOUND * torch.ones(2)
    )


def slcp_neb_source() -> Distribution:
    r"""Returns the NEB paper's SLCP source: the task's prior :math:`U(-3, 3)^5`."""
    return BoxUniform(
        -slcp.PRIOR_BOUND * torch.ones(5), slcp.PRIOR_BOUND * torch.ones(5)
    )


BUILTIN_SOURCES: dict[str, Callable[[], Distribution]] = {
    "gaussian_smearing": gaussian_smearing_source,
    "falling_spectrum": falling_spectrum_source,
    "two_moons": two_moons_source,
    "slcp": slcp_source,
    "two_moons_neb": two_moons_neb_source,
    "slcp_neb": slcp_neb_source,
}


def _describe_support(support: constraints.Constraint) -> str:
    base = support
    while isinstance(base, constraints.independent):
        base = base.base_constraint
    low, high = getattr(base, "lower_bound", None), getattr(base, "upper_bound", None)
    if isinstance(low, Tensor) and isinstance(high, Tensor):
        return f"the box low = {low.tolist()}, high = {high.tolist()}"
    return str(support)


def source_from_config(
    spec: dict[str, Any], prior: Distribution, where: str
) -> Distribution:
    """Builds the true source of a closure test from its config and checks it fits the prior.

    Supported specs:

    - ``{builtin: name}``, a name of :data:`BUILTIN_SOURCES`;
    - a prior-like spec, ``{type: box_uniform | gaussian | custom, ...}``, built by
      :func:`~sbi_core.tasks.priors.prior_from_config`.

    The source must have the prior's event shape ``(d,)`` and stay inside its support:
    :data:`SUPPORT_CHECK_SAMPLES` samples, drawn on a forked generator seeded with
    :data:`SUPPORT_CHECK_SEED` (the caller's stream is untouched), must all lie in it.

    Arguments:
        spec: The source mapping.
        prior: The analysis's prior, the one the estimators were trained on.
        where: The spec's dotted config key, e.g. ``"analyses.demo.unfolding.source"``.

    Returns:
        The source, float32, event shape ``(d,)``.

    Raises:
        ConfigError: Naming ``where`` (or a key under it), for an unknown builtin name,
            a malformed spec, a wrong event shape, or mass outside the prior's support.

    Example:
        >>> from sbi_core.tasks import BUILTIN_TASKS
        >>> prior = BUILTIN_TASKS["two_moons"]().prior
        >>> source_from_config({"builtin": "two_moons"}, prior, "s").sample((3,)).shape
        torch.Size([3, 2])
    """
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where}: expected a mapping, {{builtin: name}} or a prior-like spec with "
            f"'type', got {spec!r}"
        )
    if "builtin" in spec:
        for key in spec:
            if key != "builtin":
                raise ConfigError(
                    f"{where}.{key}: a builtin source takes no other keys; remove it, or "
                    "give a prior-like spec ({type: ...}) instead of 'builtin'"
                )
        name = spec["builtin"]
        if not isinstance(name, str) or name not in BUILTIN_SOURCES:
            raise ConfigError(
                f"{where}.builtin: unknown source {name!r}; expected one of "
                f"{', '.join(BUILTIN_SOURCES)}"
            )
        source = BUILTIN_SOURCES[name]()
        key = f"{where}.builtin"
    else:
        source = prior_from_config(spec, where)
        key = where
    d = int(prior.event_shape[0])
    if source.batch_shape != torch.Size() or tuple(source.event_shape) != (d,):
        raise ConfigError(
            f"{key}: the source has event shape {tuple(source.event_shape)} and batch shape "
            f"{tuple(source.batch_shape)}; expected event shape ({d},) and batch shape () "
            f"like the analysis's prior"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SUPPORT_CHECK_SEED)
        samples = source.sample((SUPPORT_CHECK_SAMPLES,))
    inside = prior.support.check(samples.to(torch.float32))
    if not bool(inside.all()):
        bad = samples[int((~inside).nonzero()[0])]
        raise ConfigError(
            f"{key}: the source puts mass outside the prior's support: sample "
            f"{[round(float(v), 6) for v in bad]} is outside {_describe_support(prior.support)}; "
            "unfolding can only recover a source inside the prior the estimators were "
            "trained on"
        )
    return source
