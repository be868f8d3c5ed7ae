"""Tests for sbi_core.tasks: simulators, exact posteriors, priors from config, custom tasks."""

from __future__ import annotations

import math
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy import stats

from sbi_core.errors import ConfigError, SimulationError
from sbi_core.tasks import (
    BUILTIN_TASKS,
    Task,
    build_task,
    gaussian_linear_posterior,
    import_callable,
    prior_from_config,
)
from sbi_core.diagnostics import c2st
from sbi_core.sampling import sample_sir
from sbi_core.tasks.gaussian_linear import NOISE_VARIANCE, PRIOR_VARIANCE, gaussian_conjugate_posterior
from sbi_core.tasks.slcp import slcp_log_likelihood
from tests.conftest import imports_sympy

WHERE = "analyses.demo"


# ---------------------------------------------------------------------------- builtins


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_builtin_task_shapes(name: str) -> None:
    torch.manual_seed(0)
    task = BUILTIN_TASKS[name]()
    dims = {"gaussian_linear": (10, 10), "two_moons": (2, 2), "slcp": (5, 8), "gaussian_smearing": (1, 1),
            "falling_spectrum": (1, 1)}[name]
    assert task.name == name
    assert task.dim_theta == dims[0]
    names = {"gaussian_smearing": ("theta",), "falling_spectrum": ("energy",)}
    assert task.parameter_names == names.get(name, tuple(f"theta_{i}" for i in range(1, dims[0] + 1)))
    assert task.prior.batch_shape == torch.Size()
    theta = task.prior.sample((7,))
    assert theta.dtype == torch.float32 and theta.shape == (7, dims[0])
    x = task.simulate(theta)
    assert x.dtype == torch.float32 and x.shape == (7, dims[1])
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_builtin_simulator_uses_global_rng(name: str) -> None:
    task = BUILTIN_TASKS[name]()
    torch.manual_seed(3)
    theta = task.prior.sample((5,))
    torch.manual_seed(4)
    x1 = task.simulate(theta)
    torch.manual_seed(4)
    x2 = task.simulate(theta)
    assert torch.equal(x1, x2)
    assert not torch.equal(x1, task.simulate(theta))


# ---------------------------------------------------------------------- gaussian linear


def test_gaussian_linear_prior_and_simulator_moments() -> None:
    task = BUILTIN_TASKS["gaussian_linear"]()
    assert torch.allclose(task.prior.mean, torch.zeros(10))
    assert torch.allclose(task.prior.variance, torch.full((10,), 0.1))
    # Independent normals draw what sbibm's MultivariateNormal(0, 0.1 I) draws, for a seed.
    torch.manual_seed(0)
    draws = task.prior.sample((1000,))
    torch.manual_seed(0)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(10), 0.1 * torch.eye(10))
    assert torch.equal(draws, mvn.sample((1000,)))
    assert torch.allclose(task.prior.log_prob(draws), mvn.log_prob(draws), atol=1e-5)
    torch.manual_seed(0)
    theta = torch.linspace(-0.5, 0.5, 10)
    x = task.simulate(theta.expand(200_000, 10)).double()
    # Standard errors: mean sqrt(0.1 / 2e5) = 7e-4, variance 3e-4, covariance 2.2e-4.
    assert torch.allclose(x.mean(0), theta.double(), atol=4e-3)
    assert torch.allclose(
        torch.cov(x.T), 0.1 * torch.eye(10, dtype=torch.float64), atol=1.5e-3
    )


def test_building_gaussian_linear_imports_no_sympy() -> None:
    """torch.broadcast_shapes (a MultivariateNormal's constructor) imports sympy: 0.45 s of every job."""
    assert not imports_sympy("""
        from sbi_core.tasks import BUILTIN_TASKS
        task = BUILTIN_TASKS["gaussian_linear"]()
        task.prior.log_prob(task.simulate(task.prior.sample((5,))))
    """)


def test_gaussian_linear_posterior_closed_form() -> None:
    x_o = torch.linspace(-0.6, 0.9, 10)
    posterior = gaussian_linear_posterior(x_o)
    # Independent numpy conjugate update, in precision form.
    prior_precision = np.eye(10) / 0.1
    noise_precision = np.eye(10) / 0.1
    cov = np.linalg.inv(prior_precision + noise_precision)
    mean = cov @ (noise_precision @ x_o.double().numpy())
    np.testing.assert_allclose(posterior.mean.numpy(), mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(posterior.covariance_matrix.numpy(), cov, atol=1e-7)
    assert torch.allclose(posterior.mean, x_o / 2, atol=1e-6)
    assert torch.allclose(posterior.covariance_matrix, 0.05 * torch.eye(10), atol=1e-7)
    assert torch.allclose(gaussian_linear_posterior(x_o[None]).mean, posterior.mean)


def test_gaussian_conjugate_posterior_matches_importance_sampling() -> None:
    # Correlated prior and noise, so the general formula (not x/2) is exercised.
    prior_mean = torch.tensor([0.3, -0.2], dtype=torch.float64)
    prior_cov = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
    noise_cov = torch.tensor([[0.4, -0.1], [-0.1, 0.2]], dtype=torch.float64)
    x_o = torch.tensor([0.8, -0.5], dtype=torch.float64)
    posterior = gaussian_conjugate_posterior(prior_mean, prior_cov, noise_cov, x_o)

    torch.manual_seed(0)
    prior = torch.distributions.MultivariateNormal(prior_mean, prior_cov)
    theta = prior.sample((1_000_000,))
    log_w = torch.distributions.MultivariateNormal(theta, noise_cov).log_prob(x_o)
    w = torch.softmax(log_w, 0)
    mean = (w[:, None] * theta).sum(0)
    centered = theta - mean
    cov = (w[:, None, None] * centered[:, :, None] * centered[:, None, :]).sum(0)
    assert torch.allclose(posterior.mean.double(), mean, atol=3e-3)
    assert torch.allclose(posterior.covariance_matrix.double(), cov, atol=3e-3)
    # Sanity: the posterior is genuinely different from the naive x/2 answer.
    assert (posterior.mean.double() - x_o / 2).abs().max() > 0.05


def test_gaussian_linear_reference_posterior_samples() -> None:
    task = BUILTIN_TASKS["gaussian_linear"]()
    x_o = torch.linspace(-0.6, 0.9, 10)
    torch.manual_seed(1)
    samples = task.reference_posterior(x_o, 50_000)
    assert samples.shape == (50_000, 10)
    assert torch.allclose(samples.mean(0), x_o / 2, atol=5e-3)
    assert torch.allclose(torch.cov(samples.T), 0.05 * torch.eye(10), atol=2e-3)


# --------------------------------------------------------------------------- two moons


def _moon_offset(theta: torch.Tensor) -> torch.Tensor:
    z0 = (theta[..., 0] + theta[..., 1]) / math.sqrt(2)
    z1 = (theta[..., 1] - theta[..., 0]) / math.sqrt(2)
    return torch.stack((-z0.abs(), z1), -1)


def test_two_moons_simulator_noise_distribution() -> None:
    task = BUILTIN_TASKS["two_moons"]()
    theta = torch.tensor(
        [-0.4, -0.1]
    )  # theta_1 + theta_2 < 0: checks the |.| in the map
    torch.manual_seed(0)
    x = task.simulate(theta.expand(200_000, 2)).double()
    p = (
        x
        - _moon_offset(theta.double())
        - torch.tensor([0.25, 0.0], dtype=torch.float64)
    )
    r, a = p.norm(dim=1), torch.atan2(p[:, 1], p[:, 0])
    assert abs(r.mean() - 0.1) < 1e-4 and abs(r.std() - 0.01) < 2e-4
    assert a.abs().max() <= math.pi / 2 + 1e-3
    assert abs(a.mean()) < 0.01 and abs(a.var() - math.pi**2 / 12) < 0.01
    assert (
        stats.kstest(a.numpy(), stats.uniform(-math.pi / 2, math.pi).cdf).pvalue > 1e-3
    )


def _grid_posterior(
    x_o: torch.Tensor, n: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force posterior on an n x n grid over the prior box (uniform prior).

    p(x | theta) is the density of the noise point p = x - offset(theta) =
    (r cos a + 0.25, r sin a): by the polar change of variables,
    N(r; 0.1, 0.01) / (pi r) for p_0 > 0.25 and 0 elsewhere.
    """
    c = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 - 1
    theta = torch.stack(torch.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)
    p = x_o.double() - _moon_offset(theta)
    u, v = p[:, 0] - 0.25, p[:, 1]
    r = torch.sqrt(u**2 + v**2)
    density = torch.where(
        u > 0, torch.exp(-0.5 * ((r - 0.1) / 0.01) ** 2) / (math.pi * r), 0.0
    )
    return theta, density / density.sum()


def _histogram(
    theta: torch.Tensor, weights: torch.Tensor, bins: int = 20
) -> torch.Tensor:
    index = ((theta.double() + 1) / 2 * bins).long().clamp(0, bins - 1)
    hist = torch.zeros(bins * bins, dtype=torch.float64)
    hist.index_add_(0, index[:, 0] * bins + index[:, 1], weights.double())
    return hist / hist.sum()


# (0.3, 0.05) lies beyond the moons' base offset (first component > 0.25), where noise
# draws with p[0] < x_o[0] have no preimage; sbibm's sampler keeps them (TV ~ 0.2 off).
@pytest.mark.parametrize("x_o", [(0.0, 0.0), (0.3, 0.05), (-0.5, 0.2)])
def test_two_moons_reference_posterior_matches_grid(x_o: tuple[float, float]) -> None:
    x_o = torch.tensor(x_o)
    task = BUILTIN_TASKS["two_moons"]()
    torch.manual_seed(0)
    samples = task.reference_posterior(x_o, 100_000)
    assert samples.shape == (100_000, 2)
    assert (samples.abs() < 1).all()

    grid, weights = _grid_posterior(x_o)
    sample_hist = _histogram(samples, torch.ones(len(samples)))
    grid_hist = _histogram(grid, weights)
    # Monte Carlo noise alone gives a total variation of ~0.005.
    assert 0.5 * (sample_hist - grid_hist).abs().sum() < 0.02
    grid_mean = (weights[:, None] * grid).sum(0)
    grid_second = (weights[:, None, None] * grid[:, :, None] * grid[:, None, :]).sum(0)
    samples = samples.double()
    assert torch.allclose(samples.mean(0), grid_mean, atol=6e-3)
    assert torch.allclose(
        (samples[:, :, None] * samples[:, None, :]).mean(0), grid_second, atol=6e-3
    )


def test_two_moons_reference_posterior_both_branches() -> None:
    task = BUILTIN_TASKS["two_moons"]()
    torch.manual_seed(2)
    samples = task.reference_posterior(torch.tensor([0.0, 0.0]), 100_000)
    # The two modes are the sign branches of theta_1 + theta_2, swapped by the symmetry
    # (theta_1, theta_2) -> (-theta_2, -theta_1) of the likelihood and the prior box.
    upper = (samples.sum(1) > 0).double().mean()
    assert abs(upper - 0.5) < 0.01  # standard error 0.0016
    mirrored = torch.stack((-samples[:, 1], -samples[:, 0]), 1)
    ones = torch.ones(len(samples))
    assert (
        0.5 * (_histogram(samples, ones) - _histogram(mirrored, ones)).abs().sum()
        < 0.02
    )
    # The posterior is a thin crescent: each sample's implied noise radius is ~ N(0.1, 0.01).
    p = torch.tensor([0.0, 0.0]) - _moon_offset(samples) - torch.tensor([0.25, 0.0])
    r = p.norm(dim=1)
    assert abs(r.mean() - 0.1) < 1e-3 and abs(r.std() - 0.01) < 5e-4


def test_two_moons_reference_posterior_checks_x_o() -> None:
    task = BUILTIN_TASKS["two_moons"]()
    with pytest.raises(ValueError, match="x_o must have 2 values"):
        task.reference_posterior(torch.zeros(3), 10)


# ------------------------------------------------------------------------------- slcp


def test_slcp_simulator_moments() -> None:
    task = BUILTIN_TASKS["slcp"]()
    theta = torch.tensor([0.5, -1.0, 1.2, -0.8, 0.7])
    torch.manual_seed(0)
    x = task.simulate(theta.expand(100_000, 5))
    assert x.shape == (100_000, 8)
    draws = x.double().reshape(-1, 4, 2)
    s1, s2, rho = 1.2**2, 0.8**2, math.tanh(0.7)
    cov = torch.tensor(
        [[s1**2 + 1e-6, rho * s1 * s2], [rho * s1 * s2, s2**2 + 1e-6]],
        dtype=torch.float64,
    )
    for k in range(4):
        assert torch.allclose(
            draws[:, k].mean(0),
            torch.tensor([0.5, -1.0], dtype=torch.float64),
            atol=0.02,
        )
        assert torch.allclose(torch.cov(draws[:, k].T), cov, rtol=0.03, atol=5e-3)
    # The 4 draws are independent.
    cross = torch.cov(x.double().T)[:2, 2:]
    assert cross.abs().max() < 0.03


def test_slcp_log_likelihood_is_four_gaussian_draws() -> None:
    torch.manual_seed(1)
    theta = BUILTIN_TASKS["slcp"]().prior.sample((50,))
    x = torch.randn(50, 8) * 2
    theta64 = theta.double()
    s1, s2, rho = theta64[:, 2] ** 2, theta64[:, 3] ** 2, torch.tanh(theta64[:, 4])
    cov = torch.stack((torch.stack((s1**2 + 1e-6, rho * s1 * s2), -1), torch.stack((rho * s1 * s2, s2**2 + 1e-6), -1)), -2)
    gaussian = torch.distributions.MultivariateNormal(theta64[:, None, :2], cov[:, None])
    expected = gaussian.log_prob(x.reshape(50, 4, 2).double()).sum(-1)
    assert torch.allclose(slcp_log_likelihood(theta, x).double(), expected, rtol=1e-5, atol=1e-3)


class _ExactSLCP(torch.nn.Module):
    """SLCP's exact likelihood as a log-ratio model for our SIR."""

    dim_theta, x_shape = 5, (8,)

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def all_pairs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return slcp_log_likelihood(theta[:, None], x[None])

    def per_observation(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return slcp_log_likelihood(theta, x[:, None])


def test_slcp_reference_posterior_matches_exact_importance_sampling() -> None:
    """The reference (means integrated out, scales importance-sampled, signs symmetric) against
    plain SIR of the exact likelihood over 5 dimensions; a C2ST that cannot tell them apart."""
    task = BUILTIN_TASKS["slcp"]()
    torch.manual_seed(0)
    x = task.simulate(torch.tensor([[-1.2, 2.0, 1.4, -1.1, 0.4]]))
    reference = task.reference_posterior(x, 3000)
    assert reference.shape == (3000, 5) and (reference.abs() <= 3).all()
    sir, ess = sample_sir(_ExactSLCP(), task.prior, x, 3000, min_ess=20_000, max_proposals=2**23, seed=1)
    assert float(ess.min()) > 10_000
    # Both signs of theta_3 and theta_4, equally (the simulator sees only their squares).
    assert abs(float((reference[:, 2] > 0).float().mean()) - 0.5) < 0.03
    assert c2st(sir[0], reference, seed=1).accuracy < 0.53


# ------------------------------------------------------------------------------- Task


def _sbibm(task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """sbibm's ten published observations of `task` and the parameters that simulated them."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "sbibm_observations.json"
    data = json.loads(path.read_text())["tasks"][task]
    return torch.tensor(data["true_parameters"]), torch.tensor(data["observations"])


def test_sbibm_observations_mean_the_same_under_our_tasks() -> None:
    """benchmarks/defaults_c2st.py compares with numbers published on sbibm's ten observations: each
    must be a typical simulation of its true parameter under our simulators (same priors, noise and
    data layout), or the comparison is of different problems."""
    # gaussian_linear: our prior and noise variances make theta^2 and (x - theta)^2 chi^2 with 10 x 10
    # degrees of freedom (a variance of 1 would give about 12 each).
    theta, x = _sbibm("gaussian_linear")
    for residual, variance in ((theta, PRIOR_VARIANCE), (x - theta, NOISE_VARIANCE)):
        assert 0.001 < stats.chi2.sf(float((residual.double() ** 2).sum() / variance), df=100) < 0.999
    # two_moons: the true parameters' ranks under our reference posterior are uniform.
    theta, x = _sbibm("two_moons")
    torch.manual_seed(0)
    task = BUILTIN_TASKS["two_moons"]()
    ranks = [float((task.reference_posterior(x[i], 4000)[:, j] < theta[i, j]).double().mean())
             for i in range(10) for j in range(2)]
    assert stats.kstest(ranks, "uniform").pvalue > 0.001
    # slcp: each observation's likelihood ranks uniformly among fresh simulations of its parameter
    # (its 4 x 2 layout transposed would rank every one near 0).
    theta, x = _sbibm("slcp")
    task = BUILTIN_TASKS["slcp"]()
    observed = slcp_log_likelihood(theta, x)
    fresh = slcp_log_likelihood(theta.repeat(2000, 1), task.simulate(theta.repeat(2000, 1))).reshape(2000, 10)
    percentiles = (fresh < observed).double().mean(0).numpy()
    assert stats.kstest(percentiles, "uniform").pvalue > 0.001
    assert slcp_log_likelihood(theta, x.reshape(10, 4, 2).transpose(1, 2).reshape(10, 8)).sum() < observed.sum() - 100


def test_task_simulate_converts_numpy_and_checks_output() -> None:
    prior = prior_from_config(
        {"type": "box_uniform", "low": [0, 0], "high": [1, 1]}, "p"
    )
    task = Task(
        "toy",
        prior,
        ("a", "b"),
        simulator=lambda theta: theta.numpy().astype(np.float64) * 2,
    )
    theta = torch.rand(4, 2)
    x = task.simulate(theta)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert torch.allclose(x, 2 * theta)

    bad = {
        "no simulator": (None, "has no simulator"),
        "list": (
            lambda theta: theta.tolist(),
            "must return a torch tensor or numpy array, got list",
        ),
        "rows": (lambda theta: theta[:-1], r"N = 4 rows"),
        "1-d": (lambda theta: theta[:, 0], r"at least 2 dimensions"),
        "raises": (lambda theta: 1 / 0, "raised ZeroDivisionError"),
    }
    for simulator, match in bad.values():
        with pytest.raises(SimulationError, match=f"task 'toy'.*{match}"):
            Task("toy", prior, ("a", "b"), simulator=simulator).simulate(theta)
    with pytest.raises(ValueError, match=r"theta must have shape \[N, 2\]"):
        task.simulate(torch.rand(4, 3))


# ----------------------------------------------------------------------------- priors


def test_box_uniform_prior() -> None:
    prior = prior_from_config(
        {"type": "box_uniform", "low": [-1, 0, 2], "high": [1, 0.5, 5]}, "p"
    )
    assert prior.event_shape == (3,) and prior.batch_shape == ()
    low, high = torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([1.0, 0.5, 5.0])
    assert torch.allclose(prior.mean, (low + high) / 2)
    assert torch.allclose(prior.variance, (high - low) ** 2 / 12)
    assert torch.allclose(
        prior.log_prob(torch.tensor([0.0, 0.1, 3.0])), -torch.log(high - low).sum()
    )
    assert prior.log_prob(torch.tensor([0.0, 0.6, 3.0])) == -math.inf
    assert prior.sample((5,)).dtype == torch.float32


def test_gaussian_priors() -> None:
    prior = prior_from_config(
        {"type": "gaussian", "mean": [1, -2], "std": [0.5, 3]}, "p"
    )
    assert prior.event_shape == (2,) and prior.batch_shape == ()
    assert torch.allclose(prior.mean, torch.tensor([1.0, -2.0]))
    assert torch.allclose(prior.variance, torch.tensor([0.25, 9.0]))
    point = torch.tensor([0.3, 1.0])
    expected = stats.norm(1, 0.5).logpdf(0.3) + stats.norm(-2, 3).logpdf(1.0)
    assert prior.log_prob(point).item() == pytest.approx(expected, rel=1e-5)

    cov = [[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]]
    prior = prior_from_config({"type": "gaussian", "mean": [0, 1, 2], "cov": cov}, "p")
    assert prior.event_shape == (3,) and prior.sample().dtype == torch.float32
    assert torch.allclose(prior.covariance_matrix, torch.tensor(cov))
    point = torch.tensor([0.5, 0.0, 2.5])
    expected = stats.multivariate_normal([0, 1, 2], cov).logpdf(point.numpy())
    assert prior.log_prob(point).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ([1, 2], r"^p: expected a mapping"),
        ({"low": [0], "high": [1]}, r"^p\.type: required"),
        (
            {"type": "beta"},
            r"^p\.type: unknown prior type 'beta'; expected one of box_uniform, gaussian, custom",
        ),
        (
            {"type": "box_uniform"},
            r"^p: a box_uniform prior needs 'low' and 'high' bounds",
        ),
        (
            {"type": "box_uniform", "low": [0]},
            r"^p: a box_uniform prior needs 'low' and 'high' bounds",
        ),
        (
            {"type": "box_uniform", "low": [0, 0], "high": [1]},
            r"^p\.high: expected 2 values",
        ),
        (
            {"type": "box_uniform", "low": [0, 2], "high": [1, 1]},
            r"^p\.high: .*high\[1\] = 1 <= low\[1\] = 2",
        ),
        (
            {"type": "box_uniform", "low": "0", "high": [1]},
            r"^p\.low: expected a non-empty list of numbers",
        ),
        (
            {"type": "box_uniform", "low": [], "high": []},
            r"^p\.low: expected a non-empty list",
        ),
        (
            {"type": "box_uniform", "low": [0, "a"], "high": [1, 1]},
            r"^p\.low\[1\]: expected a finite number",
        ),
        (
            {"type": "box_uniform", "low": [0, True], "high": [1, 2]},
            r"^p\.low\[1\]: expected a finite number",
        ),
        (
            {"type": "box_uniform", "low": [0], "high": [float("inf")]},
            r"^p\.high\[0\]: expected a finite number",
        ),
        (
            {"type": "box_uniform", "low": [0], "high": [1], "mean": [0]},
            r"^p\.mean: unknown key for a box_uniform",
        ),
        ({"type": "gaussian", "std": [1]}, r"^p\.mean: required"),
        (
            {"type": "gaussian", "mean": [0]},
            r"^p: a gaussian prior needs exactly one of 'std'",
        ),
        (
            {"type": "gaussian", "mean": [0], "std": [1], "cov": [[1]]},
            r"^p: .*exactly one of",
        ),
        (
            {"type": "gaussian", "mean": [0, 0], "std": [1]},
            r"^p\.std: expected 2 values",
        ),
        (
            {"type": "gaussian", "mean": [0, 0], "std": [1, 0]},
            r"^p\.std\[1\]: must be > 0",
        ),
        (
            {"type": "gaussian", "mean": [0, 0], "cov": [[1, 0]]},
            r"^p\.cov: expected a 2x2 matrix",
        ),
        (
            {"type": "gaussian", "mean": [0, 0], "cov": [[1, 0], [0]]},
            r"^p\.cov: expected a 2x2 matrix",
        ),
        (
            {"type": "gaussian", "mean": [0, 0], "cov": [[1, 0.5], [0.4, 1]]},
            r"^p\.cov: must be symmetric",
        ),
        (
            {"type": "gaussian", "mean": [0, 0], "cov": [[1, 2], [2, 1]]},
            r"^p\.cov: must be positive definite.*Cholesky",
        ),
        ({"type": "custom"}, r"^p\.path: required for a custom prior"),
        (
            {"type": "custom", "path": "no_colon_here"},
            r"^p\.path: expected 'package\.module:function'",
        ),
        (
            {"type": "custom", "path": "sbi_core_no_such_module:f"},
            r"^p\.path: cannot import module 'sbi_core_no_such_module' \(ModuleNotFoundError",
        ),
        (
            {"type": "custom", "path": "math:no_such_function"},
            r"^p\.path: 'math' has no attribute 'no_such_function'",
        ),
        (
            {"type": "custom", "path": "math:pi"},
            r"^p\.path: 'math:pi' is a float, not a callable",
        ),
        (
            {"type": "custom", "path": "math:sqrt"},
            r"^p\.path: calling 'math:sqrt'\(\) raised TypeError",
        ),
        (
            {"type": "custom", "path": "os:getcwd"},
            r"^p\.path: 'os:getcwd'\(\) must return a torch\.distributions\.Distribution, got str",
        ),
    ],
)
def test_prior_config_errors(spec: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        prior_from_config(spec, "p")  # type: ignore[arg-type]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Writes a module of user code to tmp_path and puts it on sys.path."""
    name = "sbi_core_test_user_code"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
            import numpy as np
            import torch
            from torch.distributions import Independent, Normal

            def prior():
                return Independent(Normal(torch.zeros(3), torch.ones(3)), 1)

            def prior_float64():
                return Independent(Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), 1)

            def prior_batched():
                return Normal(torch.zeros(3), torch.ones(3))

            def simulate(theta):
                # numpy in, numpy (float64) out, as many user simulators do
                theta = theta.numpy()
                return np.stack([theta.sum(1), theta[:, 0] * theta[:, 1]], axis=1) + np.random.normal(size=(len(theta), 2))
            """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_custom_prior(user_module: str) -> None:
    prior = prior_from_config({"type": "custom", "path": f"{user_module}:prior"}, "p")
    assert prior.event_shape == (3,)
    with pytest.raises(ConfigError, match=r"^p\.path: the prior must be float32"):
        prior_from_config(
            {"type": "custom", "path": f"{user_module}:prior_float64"}, "p"
        )
    with pytest.raises(
        ConfigError,
        match=r"^p\.path: the prior must have event shape \(d,\) and batch shape \(\)",
    ):
        prior_from_config(
            {"type": "custom", "path": f"{user_module}:prior_batched"}, "p"
        )


def test_custom_prior_check_leaves_rng_alone(user_module: str) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    prior_from_config({"type": "custom", "path": f"{user_module}:prior"}, "p")
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------ build_task


def test_build_custom_task(user_module: str) -> None:
    analysis = {
        "task": "custom",
        "prior": {"type": "box_uniform", "low": [0, 0, 0], "high": [1, 2, 3]},
        "simulator": f"{user_module}:simulate",
    }
    task = build_task(analysis, WHERE)
    assert task.name == "custom" and task.dim_theta == 3
    assert task.parameter_names == ("theta_1", "theta_2", "theta_3")
    assert task.reference_posterior is None
    np.random.seed(0)
    theta = task.prior.sample((20_000,))
    x = task.simulate(theta)
    assert x.dtype == torch.float32 and x.shape == (20_000, 2)
    assert (x[:, 0] - theta.sum(1)).mean().abs() < 0.03
    assert (x[:, 0] - theta.sum(1)).std().sub(1).abs() < 0.03

    named = build_task(
        {**analysis, "parameter_names": ["mass", "width", "yield"]}, WHERE
    )
    assert named.parameter_names == ("mass", "width", "yield")
    files_only = build_task({"task": "custom", "prior": analysis["prior"]}, WHERE)
    assert files_only.simulator is None
    with pytest.raises(SimulationError, match="task 'custom' has no simulator"):
        files_only.simulate(theta)


def test_build_builtin_task() -> None:
    task = build_task(
        {"task": "slcp", "parameter_names": ["m1", "m2", "s1", "s2", "r"]}, WHERE
    )
    assert task.name == "slcp" and task.parameter_names == ("m1", "m2", "s1", "s2", "r")
    task = build_task({"task": "gaussian_linear"}, WHERE)
    assert task.reference_posterior is not None and task.dim_theta == 10


@pytest.mark.parametrize(
    ("analysis", "match"),
    [
        ("two_moons", r"^analyses\.demo: expected a mapping"),
        (
            {},
            r"^analyses\.demo\.task: required; one of gaussian_linear, two_moons, slcp, gaussian_smearing, falling_spectrum, histfactory, custom",
        ),
        (
            {"task": "gaussian"},
            r"^analyses\.demo\.task: unknown task 'gaussian'; expected one of gaussian_linear, two_moons, slcp, gaussian_smearing, falling_spectrum, histfactory, custom",
        ),
        ({"task": ["slcp"]}, r"^analyses\.demo\.task: unknown task \['slcp'\]"),
        ({"task": "custom"}, r"^analyses\.demo\.prior: required for task 'custom'"),
        (
            {"task": "custom", "prior": {"type": "box_uniform", "low": [0]}},
            r"^analyses\.demo\.prior: a box_uniform prior needs 'low' and 'high' bounds",
        ),
        (
            {
                "task": "custom",
                "prior": {"type": "gaussian", "mean": [0], "std": [1]},
                "simulator": "sbi_core_no_such_module:run",
            },
            r"^analyses\.demo\.simulator: cannot import module 'sbi_core_no_such_module'.*No module named 'sbi_core_no_such_module'",
        ),
        (
            {
                "task": "custom",
                "prior": {"type": "gaussian", "mean": [0], "std": [1]},
                "simulator": "math",
            },
            r"^analyses\.demo\.simulator: expected 'package\.module:function', got 'math'",
        ),
        (
            {
                "task": "custom",
                "prior": {"type": "gaussian", "mean": [0, 0], "std": [1, 1]},
                "parameter_names": ["a"],
            },
            r"^analyses\.demo\.parameter_names: expected 2 names \(the prior's dimension\), got 1",
        ),
        (
            {
                "task": "custom",
                "prior": {"type": "gaussian", "mean": [0, 0], "std": [1, 1]},
                "parameter_names": ["a", "a"],
            },
            r"^analyses\.demo\.parameter_names: names must be unique",
        ),
        (
            {
                "task": "custom",
                "prior": {"type": "gaussian", "mean": [0], "std": [1]},
                "parameter_names": "a",
            },
            r"^analyses\.demo\.parameter_names: expected a list of non-empty strings",
        ),
        (
            {
                "task": "two_moons",
                "prior": {"type": "box_uniform", "low": [0], "high": [1]},
            },
            r"^analyses\.demo\.prior: task 'two_moons' has a fixed prior",
        ),
        (
            {"task": "slcp", "simulator": "math:sqrt"},
            r"^analyses\.demo\.simulator: task 'slcp' has a fixed simulator",
        ),
        (
            {"task": "two_moons", "parameter_names": ["a"]},
            r"^analyses\.demo\.parameter_names: expected 2 names",
        ),
    ],
)
def test_build_task_errors(analysis: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_task(analysis, WHERE)  # type: ignore[arg-type]


def test_import_callable_bad_module_in_user_code(tmp_path, monkeypatch) -> None:
    # An error raised while importing the user's module is reported with the key.
    (tmp_path / "sbi_core_test_broken.py").write_text(
        "import sbi_core_missing_dependency\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ConfigError,
        match=r"^x\.simulator: cannot import module 'sbi_core_test_broken'.*sbi_core_missing_dependency",
    ):
        import_callable("sbi_core_test_broken:run", "x.simulator")
    assert list(import_callable("collections:OrderedDict.fromkeys", "x")("ab")) == [
        "a",
        "b",
    ]


def test_two_moons_reference_posterior_gives_up_on_impossible_x_o() -> None:
    task = BUILTIN_TASKS["two_moons"]()
    assert task.reference_posterior(torch.zeros(2), 0).shape == (0, 2)
    torch.manual_seed(0)
    with pytest.raises(
        ValueError, match=r"x_o = \[3\.0, 3\.0\] is \(nearly\) impossible"
    ):
        task.reference_posterior(torch.tensor([3.0, 3.0]), 10)
