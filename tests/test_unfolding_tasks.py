"""Tests for the unfolding closure tasks (gaussian_smearing, falling_spectrum) and their sources."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from sbi_core.errors import ConfigError
from sbi_core.tasks import BUILTIN_TASKS, Task, build_task
from sbi_core.tasks import falling_spectrum as fs
from sbi_core.tasks import gaussian_smearing as gs
from sbi_core.unfolding.sources import (
    BUILTIN_SOURCES,
    SLCP_SOURCE_COMPONENTS,
    SUPPORT_CHECK_SAMPLES,
    TruncatedGaussianMixture,
    TruncatedPowerLaw,
    source_from_config,
)

WHERE = "analyses.demo.unfolding.source"
NAMES = {"gaussian_smearing": "theta", "falling_spectrum": "energy"}
# The task each builtin source belongs to (its prior box).
SOURCE_TASKS = {
    "gaussian_smearing": "gaussian_smearing",
    "falling_spectrum": "falling_spectrum",
    "two_moons": "two_moons",
    "slcp": "slcp",
    "two_moons_neb": "two_moons",
    "slcp_neb": "slcp",
}


# ------------------------------------------------------------------------------ tasks


@pytest.mark.parametrize("name", sorted(NAMES))
def test_simulator_shapes_and_dtypes(name: str) -> None:
    torch.manual_seed(0)
    task = BUILTIN_TASKS[name]()
    assert task.name == name and task.dim_theta == 1
    assert task.parameter_names == (NAMES[name],)
    theta = task.prior.sample((7,))
    assert theta.dtype == torch.float32 and theta.shape == (7, 1)
    x = task.simulate(theta)
    assert x.dtype == torch.float32 and x.shape == (7, 1)
    assert torch.isfinite(x).all()


def test_builtin_registry_and_build_task() -> None:
    assert {"gaussian_smearing", "falling_spectrum"} <= set(BUILTIN_TASKS)
    for name in NAMES:
        assert build_task({"task": name}, "analyses.demo").name == name


def test_efficiency_field_is_optional_and_frozen() -> None:
    assert BUILTIN_TASKS["two_moons"]().efficiency is None
    assert BUILTIN_TASKS["gaussian_smearing"]().efficiency is None
    task = BUILTIN_TASKS["falling_spectrum"]()
    assert task.efficiency is fs.falling_spectrum_efficiency
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.efficiency = None  # type: ignore[misc]
    assert Task("t", task.prior, ("e",)).efficiency is None


def test_gaussian_smearing_bias_and_resolution() -> None:
    torch.manual_seed(1)
    n = 20_000
    theta = torch.full((n, 1), 0.7)
    residual = (BUILTIN_TASKS["gaussian_smearing"]().simulate(theta) - theta).double()
    assert abs(residual.mean().item() - gs.BIAS) < 4 * gs.NOISE_STD / math.sqrt(n)
    assert abs(residual.std().item() - gs.NOISE_STD) < 4 * gs.NOISE_STD / math.sqrt(
        2 * n
    )


@pytest.mark.parametrize("energy", [15.0, 80.0])
def test_falling_spectrum_relative_resolution(energy: float) -> None:
    torch.manual_seed(2)
    n = 20_000
    x = (
        BUILTIN_TASKS["falling_spectrum"]()
        .simulate(torch.full((n, 1), energy))
        .double()
    )
    expected = math.sqrt((0.5 / math.sqrt(energy)) ** 2 + 0.05**2)  # a/sqrt(E) (+) c
    relative = x.std().item() / energy
    assert abs(relative - expected) < 4 * expected / math.sqrt(2 * n)
    assert abs(x.mean().item() - energy) < 4 * expected * energy / math.sqrt(n)


def test_falling_spectrum_efficiency() -> None:
    efficiency = BUILTIN_TASKS["falling_spectrum"]().efficiency
    energy = torch.linspace(fs.ENERGY_MIN, fs.ENERGY_MAX, 181, dtype=torch.float64)
    theta = energy[:, None].clone().requires_grad_(True)
    eps = efficiency(theta)
    assert eps.shape == (181,)
    assert (eps > 0).all() and (eps <= fs.EFFICIENCY_MAX).all()
    assert (eps.diff() > 0).all()
    assert eps[energy == 20.0].item() == pytest.approx(0.45)
    eps.sum().backward()
    assert torch.isfinite(theta.grad).all() and (theta.grad > 0).all()
    eps32 = efficiency(torch.tensor([[10.0], [100.0]]))
    assert eps32.dtype == torch.float32 and (eps32 > 0).all() and (eps32 <= 0.9).all()
    with pytest.raises(ValueError, match=r"shape \[N, 1\]"):
        efficiency(torch.ones(3))


@pytest.mark.parametrize("name", sorted(NAMES))
def test_exact_log_likelihood_matches_scipy(name: str) -> None:
    x = torch.tensor([[10.0], [11.3], [40.0], [95.0]])
    if name == "gaussian_smearing":
        log_likelihood = gs.gaussian_smearing_log_likelihood
        theta = torch.tensor([[-4.0], [0.3], [2.5]], requires_grad=True)
        x = x / 10.0
        loc = theta.detach().numpy() + 0.5  # theta + b
        scale = np.ones((3, 1))  # sigma
    else:
        log_likelihood = fs.falling_spectrum_log_likelihood
        theta = torch.tensor([[12.0], [35.5], [90.0]], requires_grad=True)
        loc = theta.detach().numpy()
        scale = loc * np.sqrt(0.5**2 / loc + 0.05**2)  # E (a/sqrt(E) (+) c)
    value = log_likelihood(theta, x)
    assert value.shape == (3, 4) and value.dtype == torch.float32
    expected = stats.norm.logpdf(x.numpy()[:, 0][None, :], loc=loc, scale=scale)
    np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    value.sum().backward()
    assert torch.isfinite(theta.grad).all() and (theta.grad != 0).any()
    with pytest.raises(ValueError, match=r"x must have shape \[M, 1\]"):
        log_likelihood(theta, torch.ones(4))


def test_gaussian_smearing_reference_posterior() -> None:
    task = BUILTIN_TASKS["gaussian_smearing"]()
    torch.manual_seed(3)
    n = 20_000
    for x_o in (0.5, 5.3, -4.9):
        samples = task.reference_posterior(torch.tensor([x_o]), n).double()
        assert samples.shape == (n, 1)
        assert (samples >= -5).all() and (samples <= 5).all()
        mean = x_o - gs.BIAS
        a, b = (-5 - mean) / gs.NOISE_STD, (5 - mean) / gs.NOISE_STD
        exact = stats.truncnorm(a, b, loc=mean, scale=gs.NOISE_STD)
        assert abs(samples.mean().item() - exact.mean()) < 4 * exact.std() / math.sqrt(
            n
        )


# ---------------------------------------------------------------------------- sources


def _box(task_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    support = BUILTIN_TASKS[task_name]().prior.support.base_constraint
    return support.lower_bound, support.upper_bound


@pytest.mark.parametrize("name", sorted(BUILTIN_SOURCES))
def test_builtin_source_inside_prior_box(name: str) -> None:
    prior = BUILTIN_TASKS[SOURCE_TASKS[name]]().prior
    source = BUILTIN_SOURCES[name]()
    low, high = _box(SOURCE_TASKS[name])
    assert (
        source.event_shape == prior.event_shape and source.batch_shape == torch.Size()
    )
    assert torch.equal(source.support.base_constraint.lower_bound, low)
    assert torch.equal(source.support.base_constraint.upper_bound, high)
    torch.manual_seed(4)
    samples = source.sample((20_000,))
    assert samples.dtype == torch.float32 and samples.shape == (20_000, len(low))
    assert prior.support.check(samples).all()
    assert source.log_prob(samples).dtype == torch.float32
    assert torch.isfinite(source.log_prob(samples)).all()
    assert source_from_config({"builtin": name}, prior, WHERE) is not None


@pytest.mark.parametrize("name", sorted(BUILTIN_SOURCES))
def test_builtin_source_moments(name: str) -> None:
    source = BUILTIN_SOURCES[name]()
    torch.manual_seed(0)
    n = 40_000
    samples = source.sample((n,)).double()
    mean, std = source.mean.double(), source.variance.double().sqrt()
    assert ((samples.mean(0) - mean).abs() < 4 * std / math.sqrt(n)).all()
    # The standard error of a sample std is sqrt(m4 - s^4) / (2 s sqrt(n)) (delta method).
    m4 = ((samples - samples.mean(0)) ** 4).mean(0)
    se = (m4 - std**4).sqrt() / (2 * std * math.sqrt(n))
    assert ((samples.std(0) - std).abs() < 4 * se).all()


def test_falling_spectrum_source_analytic_mean() -> None:
    source = BUILTIN_SOURCES["falling_spectrum"]()
    assert isinstance(source, TruncatedPowerLaw)
    g, lo, hi = 2.5, 10.0, 100.0
    mean = (
        (g - 1)
        / (g - 2)
        * (lo ** (2 - g) - hi ** (2 - g))
        / (lo ** (1 - g) - hi ** (1 - g))
    )
    assert source.mean.item() == pytest.approx(mean, rel=1e-6)
    assert source.mean.item() == pytest.approx(21.183, abs=1e-3)


@pytest.mark.parametrize("name", ["gaussian_smearing", "falling_spectrum"])
def test_one_dimensional_source_normalised_and_histogram(name: str) -> None:
    source = BUILTIN_SOURCES[name]()
    low, high = (float(v) for v in _box(name))
    grid = torch.linspace(low, high, 100_001, dtype=torch.float64)
    density = source.log_prob(grid.float()[:, None]).double().exp()
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-4)
    torch.manual_seed(6)
    n = 50_000
    counts = np.histogram(
        source.sample((n,)).numpy()[:, 0], bins=20, range=(low, high)
    )[0]
    cdf = torch.cat(
        (torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(density, grid))
    )
    expected = n * cdf[::5000].diff().numpy()
    assert (np.abs(counts - expected) < 4 * np.sqrt(expected) + 3).all()


def test_two_moons_source_normalised_and_symmetric() -> None:
    source = BUILTIN_SOURCES["two_moons"]()
    assert isinstance(source, TruncatedGaussianMixture)
    axis = torch.linspace(-1.0, 1.0, 201, dtype=torch.float64)
    t1, t2 = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack((t1, t2), dim=-1).float()
    density = source.log_prob(points).double().exp()
    total = torch.trapezoid(torch.trapezoid(density, axis, dim=1), axis)
    assert total.item() == pytest.approx(1.0, abs=2e-3)
    # Mirror symmetry (theta_1, theta_2) -> (-theta_2, -theta_1) of the simulator.
    torch.manual_seed(7)
    theta = source.sample((100,))
    mirrored = -theta.flip(1)
    torch.testing.assert_close(source.log_prob(theta), source.log_prob(mirrored))


def test_slcp_source_normalised_and_symmetric() -> None:
    source = BUILTIN_SOURCES["slcp"]()
    # Importance sampling from the untruncated components, 1.5 times wider: the
    # density integrates to 1 (weights are bounded by 1.5^5 / Z).
    means, stds, weights = [], [], []
    for weight, mean, std in SLCP_SOURCE_COMPONENTS:
        for s3, s4 in itertools.product((1.0, -1.0), repeat=2):
            means.append(torch.tensor(mean) * torch.tensor([1.0, 1.0, s3, s4, 1.0]))
            stds.append(1.5 * torch.tensor(std))
            weights.append(weight / 4)
    proposal = MixtureSameFamily(
        Categorical(torch.tensor(weights)),
        Independent(Normal(torch.stack(means), torch.stack(stds)), 1),
    )
    torch.manual_seed(8)
    theta = proposal.sample((50_000,))
    inside = (theta.abs() <= 3).all(dim=1)
    ratio = torch.zeros(len(theta), dtype=torch.float64)
    ratio[inside] = (
        source.log_prob(theta[inside]).double()
        - proposal.log_prob(theta[inside]).double()
    ).exp()
    estimate, se = ratio.mean().item(), ratio.std().item() / math.sqrt(len(ratio))
    assert abs(estimate - 1.0) < 4 * se and se < 0.01
    # Sign flips of theta_3 and theta_4, the simulator's symmetries.
    flipped = theta[inside][:100] * torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])
    torch.testing.assert_close(
        source.log_prob(flipped), source.log_prob(theta[inside][:100])
    )


def test_source_log_prob_outside_box() -> None:
    for validate in (False, True):
        mixture = TruncatedGaussianMixture(
            torch.ones(1),
            torch.zeros(1, 1),
            torch.ones(1, 1),
            -torch.ones(1),
            torch.ones(1),
            validate_args=validate,
        )
        power_law = TruncatedPowerLaw(2.5, 10.0, 100.0, validate_args=validate)
        for source, outside in ((mixture, 2.0), (power_law, 5.0)):
            if validate:
                with pytest.raises(ValueError):
                    source.log_prob(torch.tensor([[outside]]))
            else:
                assert source.log_prob(torch.tensor([[outside]])).item() == -math.inf


# ------------------------------------------------------------------ source_from_config


def test_source_from_config_builds_prior_like_specs_without_touching_the_rng() -> None:
    prior = BUILTIN_TASKS["gaussian_smearing"]().prior
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    source = source_from_config(
        {"type": "box_uniform", "low": [-2], "high": [5]}, prior, WHERE
    )
    assert torch.equal(torch.rand(3), expected)
    assert source.event_shape == (1,)
    narrow = source_from_config(
        {"type": "gaussian", "mean": [0.0], "std": [0.5]}, prior, WHERE
    )
    assert narrow.event_shape == (1,)
    assert SUPPORT_CHECK_SAMPLES == 10_000


@pytest.mark.parametrize(
    ("spec", "task", "match"),
    [
        (
            {"builtin": "moons"},
            "two_moons",
            rf"^{WHERE}\.builtin: unknown source 'moons'; expected one of gaussian_smearing, "
            "falling_spectrum, two_moons, slcp",
        ),
        (
            {"type": "gaussian", "mean": [0.0], "std": [3.0]},
            "gaussian_smearing",
            rf"^{WHERE}: the source puts mass outside the prior's support: sample \[.*\] is "
            r"outside the box low = \[-5\.0\], high = \[5\.0\]; unfolding can only recover",
        ),
        (
            {"builtin": "two_moons"},
            "slcp",
            rf"^{WHERE}\.builtin: the source has event shape \(2,\) .* expected event shape "
            r"\(5,\)",
        ),
        (
            {"type": "box_uniform", "low": [0, 0], "high": [1, 1]},
            "gaussian_smearing",
            rf"^{WHERE}: the source has event shape \(2,\) .* expected event shape \(1,\)",
        ),
        (
            {"builtin": "slcp", "std": [1]},
            "slcp",
            rf"^{WHERE}\.std: a builtin source takes no",
        ),
        ({"mean": [0.0]}, "gaussian_smearing", rf"^{WHERE}\.type: required"),
        ("slcp", "slcp", rf"^{WHERE}: expected a mapping"),
    ],
)
def test_source_from_config_errors(spec: object, task: str, match: str) -> None:
    prior = BUILTIN_TASKS[task]().prior
    with pytest.raises(ConfigError, match=match):
        source_from_config(spec, prior, WHERE)  # type: ignore[arg-type]
