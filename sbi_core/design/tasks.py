r"""Simulators with a design: ``simulate(theta [N, d], design [N, T, p]) -> x [N, T]``.

Each built-in task also has its likelihood (for the prior-contrastive and nested Monte
Carlo bounds, and as checks), and the linear-Gaussian one its exact EIG. Every
simulator is written in torch with reparametrised noise, so ``x`` is differentiable in
the design: gradient ascent can run through it. The counting experiment's Poisson
counts are not; its design is searched on a grid or through a learned surrogate.

References:
    | Deep Adaptive Design (Foster et al., 2021), location finding
    | https://arxiv.org/abs/2103.02438
    | A review of modern computational algorithms for Bayesian optimal design
    | (Ryan et al., 2016), the pharmacokinetic model https://doi.org/10.1111/insr.12107
    | Implicit Deep Adaptive Design (Ivanova et al., 2021) https://arxiv.org/abs/2111.02329
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal, Normal, Poisson

from sbi_core.design.space import DesignSpace
from sbi_core.errors import ConfigError
from sbi_core.tasks.box import BoxUniform

__all__ = ["DesignTask", "BUILTIN_DESIGN_TASKS", "LIKELIHOOD_METHODS", "design_task", "build_design_task"]


@dataclass(frozen=True, eq=False)
class DesignTask:
    r"""An experiment to design: prior, design space, simulator, and what is known exactly.

    Arguments:
        name: The task's name.
        prior: :math:`p(\theta)`, event shape ``(d,)``.
        parameter_names: One name per parameter.
        space: The design space (``T`` experiments of ``p`` variables).
        simulator: ``(theta [N, d], design [N, T, p]) -> x [N, T]``, drawing from torch's
            global generator.
        log_likelihood: :math:`\log p(x | \theta, \xi)` broadcasting over leading
            dimensions: ``(theta [..., d], x [..., T], design [..., T, p]) -> [...]``;
            ``None`` for a black-box simulator.
        exact_eig: ``designs [D, T, p] -> [D]`` nats, where known.
        differentiable: Whether ``x`` is differentiable in the design (reparametrised).

    Example:
        >>> task = design_task("linear_gaussian")
        >>> designs = task.space.sample(3)
        >>> task.simulate(task.prior.sample((3,)), designs).shape
        torch.Size([3, 1])
    """

    name: str
    prior: Distribution
    parameter_names: tuple[str, ...]
    space: DesignSpace
    simulator: Callable[[Tensor, Tensor], Tensor]
    log_likelihood: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None
    exact_eig: Callable[[Tensor], Tensor] | None = None
    differentiable: bool = True

    def simulate(self, theta: Tensor, design: Tensor) -> Tensor:
        """Simulates one ``x [T]`` per row of ``theta [N, d]`` and ``design [N, T, p]``."""
        return self.simulator(theta, design)


# ------------------------------------------------------------------ linear-Gaussian regression

LINEAR_NOISE = 1.0


def _linear_regressors(design: Tensor) -> Tensor:
    """The regression rows ``X(xi) = [1, xi]`` of a straight line, ``[..., T, 2]``."""
    return torch.cat([torch.ones_like(design[..., :1]), design[..., :1]], dim=-1)


def _linear_mean(theta: Tensor, design: Tensor) -> Tensor:
    return (_linear_regressors(design) * theta[..., None, :]).sum(-1)


def _linear_simulate(theta: Tensor, design: Tensor) -> Tensor:
    mean = _linear_mean(theta, design)
    return mean + LINEAR_NOISE * torch.randn_like(mean)


def _linear_log_likelihood(theta: Tensor, x: Tensor, design: Tensor) -> Tensor:
    return Normal(_linear_mean(theta, design), LINEAR_NOISE).log_prob(x).sum(-1)


def _linear_exact_eig(designs: Tensor) -> Tensor:
    r"""``0.5 logdet(I + X Sigma X^T / sigma^2)`` with the prior's ``Sigma = I``."""
    regressors = _linear_regressors(designs)
    gram = regressors @ regressors.transpose(-1, -2) / LINEAR_NOISE**2
    eye = torch.eye(designs.shape[-2], dtype=designs.dtype, device=designs.device)
    return 0.5 * torch.logdet(eye + gram)


def linear_gaussian(num_experiments: int = 1) -> DesignTask:
    r"""A straight line ``y = theta_1 + theta_2 xi + N(0, 1)`` measured at ``xi`` in [-1, 1].

    :math:`\theta \sim N(0, I_2)`; the exact EIG is
    :math:`\tfrac12 \log\det(I_T + X \Sigma X^\top / \sigma^2)`, largest at the ends of the range.
    """
    return DesignTask(
        name="linear_gaussian",
        prior=MultivariateNormal(torch.zeros(2), torch.eye(2)),
        parameter_names=("intercept", "slope"),
        space=DesignSpace.from_bounds([-1.0], [1.0], num_experiments, names=("xi",)),
        simulator=_linear_simulate,
        log_likelihood=_linear_log_likelihood,
        exact_eig=_linear_exact_eig,
    )


# ------------------------------------------------------------------ location finding (DAD)

LOCATION_SOURCES, LOCATION_BACKGROUND, LOCATION_MAX_SIGNAL, LOCATION_NOISE = 2, 0.1, 1e-4, 0.5


def _location_mean(theta: Tensor, design: Tensor) -> Tensor:
    sources = theta.unflatten(-1, (LOCATION_SOURCES, 2))  # [..., K, 2]
    squared = ((design[..., :, None, :] - sources[..., None, :, :]) ** 2).sum(-1)  # [..., T, K]
    return torch.log(LOCATION_BACKGROUND + (1.0 / (LOCATION_MAX_SIGNAL + squared)).sum(-1))


def _location_simulate(theta: Tensor, design: Tensor) -> Tensor:
    mean = _location_mean(theta, design)
    return mean + LOCATION_NOISE * torch.randn_like(mean)


def _location_log_likelihood(theta: Tensor, x: Tensor, design: Tensor) -> Tensor:
    return Normal(_location_mean(theta, design), LOCATION_NOISE).log_prob(x).sum(-1)


def location_finding(num_experiments: int = 1) -> DesignTask:
    r"""Two hidden sources in the plane, :math:`\theta_k \sim N(0, I_2)`; a detector at ``xi`` in
    ``[-6, 6]^2`` reads :math:`\log(0.1 + \sum_k 1 / (10^{-4} + |\xi - \theta_k|^2)) + N(0, 0.5^2)`
    (Foster et al. 2021)."""
    return DesignTask(
        name="location_finding",
        prior=MultivariateNormal(torch.zeros(2 * LOCATION_SOURCES), torch.eye(2 * LOCATION_SOURCES)),
        parameter_names=("x_1", "y_1", "x_2", "y_2"),
        space=DesignSpace.from_bounds([-6.0, -6.0], [6.0, 6.0], num_experiments, names=("x", "y")),
        simulator=_location_simulate,
        log_likelihood=_location_log_likelihood,
    )


# ------------------------------------------------------------------ pharmacokinetics (Ryan et al.)

PK_DOSE_OVER_VOLUME = 400.0


def _pk_mean_and_sd(theta: Tensor, design: Tensor) -> tuple[Tensor, Tensor]:
    k_a, k_e, volume = (theta[..., i, None].exp() for i in range(3))  # [..., 1] each
    t = design[..., 0]  # [..., T]
    mean = PK_DOSE_OVER_VOLUME / volume * k_a / (k_a - k_e) * (torch.exp(-k_e * t) - torch.exp(-k_a * t))
    return mean, torch.sqrt(0.01 * mean**2 + 0.1)


def _pk_simulate(theta: Tensor, design: Tensor) -> Tensor:
    mean, sd = _pk_mean_and_sd(theta, design)
    return mean + sd * torch.randn_like(mean)


def _pk_log_likelihood(theta: Tensor, x: Tensor, design: Tensor) -> Tensor:
    mean, sd = _pk_mean_and_sd(theta, design)
    return Normal(mean, sd).log_prob(x).sum(-1)


def pharmacokinetic(num_experiments: int = 1) -> DesignTask:
    r"""A drug's concentration sampled at time ``t`` in [0, 24] h after a dose (Ryan et al. 2014):
    :math:`\log(k_a, k_e, V) \sim N(\log(1, 0.1, 20), 0.05 I)`, mean
    :math:`(400/V)\, k_a/(k_a - k_e)\, (e^{-k_e t} - e^{-k_a t})`, variance :math:`0.01\mu^2 + 0.1`.
    The parameters are the logarithms."""
    return DesignTask(
        name="pharmacokinetic",
        prior=MultivariateNormal(torch.log(torch.tensor([1.0, 0.1, 20.0])), 0.05 * torch.eye(3)),
        parameter_names=("log_k_a", "log_k_e", "log_V"),
        space=DesignSpace.from_bounds([0.0], [24.0], num_experiments, names=("t",)),
        simulator=_pk_simulate,
        log_likelihood=_pk_log_likelihood,
    )


# ------------------------------------------------------------------ a counting experiment's cut

COUNT_SIGNAL, COUNT_MASS_RESOLUTION, COUNT_BACKGROUND_PER_GEV = 30.0, 2.0, 10.0


def _count_rate(theta: Tensor, design: Tensor) -> Tensor:
    """Expected events in the window ``|m - m_0| < w``: signal ``mu S erf(w / (sqrt2 sigma))`` on a
    flat background of 10 events per GeV."""
    half_width = design[..., 0]
    signal = COUNT_SIGNAL * torch.erf(half_width / (math.sqrt(2.0) * COUNT_MASS_RESOLUTION))
    return theta[..., 0, None] * signal + COUNT_BACKGROUND_PER_GEV * 2.0 * half_width


def _count_simulate(theta: Tensor, design: Tensor) -> Tensor:
    return torch.poisson(_count_rate(theta, design))


def _count_log_likelihood(theta: Tensor, x: Tensor, design: Tensor) -> Tensor:
    return Poisson(_count_rate(theta, design)).log_prob(x).sum(-1)


def counting_cut(num_experiments: int = 1) -> DesignTask:
    r"""A resonance of 30 expected events (times the signal strength :math:`\mu \sim U(0, 3)`) with a
    2 GeV mass resolution on a flat background of 10 events per GeV, counted in a window of
    half-width ``w`` in [0.25, 10] GeV: a wide window keeps the signal and lets background in.
    The EIG on :math:`\mu` picks the cut. Poisson counts: no gradient through the simulator."""
    return DesignTask(
        name="counting_cut",
        prior=BoxUniform(torch.zeros(1), 3.0 * torch.ones(1)),
        parameter_names=("mu",),
        space=DesignSpace.from_bounds([0.25], [10.0], num_experiments, names=("half_width",)),
        simulator=_count_simulate,
        log_likelihood=_count_log_likelihood,
        differentiable=False,
    )


BUILTIN_DESIGN_TASKS: dict[str, Callable[[int], DesignTask]] = {
    "linear_gaussian": linear_gaussian,
    "location_finding": location_finding,
    "pharmacokinetic": pharmacokinetic,
    "counting_cut": counting_cut,
}


def design_task(name: str, num_experiments: int = 1) -> DesignTask:
    """A built-in design task by name (ValueError naming the choices if unknown)."""
    if name not in BUILTIN_DESIGN_TASKS:
        raise ValueError(f"unknown design task {name!r}; built in: {', '.join(BUILTIN_DESIGN_TASKS)}")
    return BUILTIN_DESIGN_TASKS[name](num_experiments)


# The EIG methods that need the simulator's likelihood, not a trained estimator.
LIKELIHOOD_METHODS = ("spce", "snmc")


def build_design_task(settings: dict[str, Any], where: str) -> DesignTask:
    """The design block's task: a built-in (its box replaced by ``space`` when given), or ``custom``:
    your ``simulator`` (and optionally ``log_likelihood``) by import path, with ``prior`` and ``space``.

    A custom simulator is called on two rows at random designs here, so that a wrong output shape
    or non-finite output stops the run before any job, naming the key.
    """
    if settings["task"] == "custom":
        task = _custom_design_task(settings, where)
    else:
        for key in ("simulator", "log_likelihood", "prior", "parameter_names", "differentiable"):
            if key in settings:
                raise ConfigError(f"{where}.{key}: only for task: custom ({settings['task']} has its own)")
        task = design_task(settings["task"], settings["num_experiments"])
    if "space" in settings:
        low, high = settings["space"]["low"], settings["space"]["high"]
        if task.name != "custom" and (len(low) != task.space.dim or len(high) != task.space.dim):
            raise ConfigError(f"{where}.space: {settings['task']} has {task.space.dim} design variable(s) "
                              f"({', '.join(task.space.names)}), got bounds for {len(low)} and {len(high)}")
        names = task.space.names if task.name != "custom" else settings["space"].get("names")
        space = DesignSpace.from_bounds(low, high, settings["num_experiments"], names, key=f"{where}.space")
        task = replace(task, space=space)
    unknown = [m for m in settings.get("methods", ()) if m in LIKELIHOOD_METHODS and task.log_likelihood is None]
    if unknown:
        raise ConfigError(f"{where}.methods: {unknown[0]} needs the simulator's likelihood, which "
                          f"{settings['task']} does not have (give design.log_likelihood, or use a trained "
                          "estimator: nre, npe, nle)")
    if task.name == "custom":
        _probe(task, where)
    return task


def _custom_design_task(settings: dict[str, Any], where: str) -> DesignTask:
    from sbi_core.tasks.priors import prior_from_config
    from sbi_core.tasks.user_code import import_callable

    for key in ("simulator", "prior", "space"):
        if key not in settings:
            raise ConfigError(f"{where}.{key}: required for task: custom")
    prior = prior_from_config(settings["prior"], f"{where}.prior")
    dim = int(prior.event_shape[0])
    names = tuple(settings.get("parameter_names") or (f"theta_{i + 1}" for i in range(dim)))
    if len(names) != dim:
        raise ConfigError(f"{where}.parameter_names: {len(names)} names for {dim} parameters")
    likelihood = settings.get("log_likelihood")
    return DesignTask(
        name="custom", prior=prior, parameter_names=names,
        space=DesignSpace.from_bounds(settings["space"]["low"], settings["space"]["high"], settings["num_experiments"],
                                      settings["space"].get("names"), key=f"{where}.space"),
        simulator=import_callable(settings["simulator"], f"{where}.simulator"),
        log_likelihood=import_callable(likelihood, f"{where}.log_likelihood") if likelihood else None,
        differentiable=bool(settings.get("differentiable", False)),
    )


def _probe(task: DesignTask, where: str) -> None:
    """Two rows at random designs: ``x`` must be finite with shape ``[2, T]``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theta, designs = task.prior.sample((2,)), task.space.sample(2)
        try:
            x = torch.as_tensor(task.simulate(theta, designs))
        except Exception as error:  # the user's code: say which key
            raise ConfigError(f"{where}.simulator: raised {type(error).__name__} on 2 rows: {error}") from error
    expected = (2, task.space.num_experiments)
    if tuple(x.shape) != expected:
        raise ConfigError(f"{where}.simulator: returned shape {list(x.shape)} for theta [2, {task.prior.event_shape[0]}] "
                          f"and design [2, {task.space.num_experiments}, {task.space.dim}]; expected {list(expected)} "
                          "(one outcome per experiment)")
    if not torch.isfinite(x).all():
        raise ConfigError(f"{where}.simulator: returned NaN or inf on 2 rows")
