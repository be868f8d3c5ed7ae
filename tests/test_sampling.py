"""Samplers for many observations at once: batched equals one at a time, support, ESS, shapes."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from sbi.utils import BoxUniform
from scipy import stats
from torch.distributions import MultivariateNormal

from sbi_core.errors import SamplingError
from sbi_core.estimators import NLEEstimator, NREEstimator
from sbi_core.ratio import RatioEstimator, train_ratio_estimator
from sbi_core.sampling import mcmc, sir, support
from sbi_core.sampling import (
    LowEffectiveSampleSizeWarning,
    RatioPosterior,
    logit_matrix,
    prior_log_prob,
    sample_mcmc,
    sample_sir,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: small networks, one torch thread
X_O = torch.tensor([[0.6, -0.4], [0.0, 0.3], [-0.5, -0.5]])


@pytest.fixture(scope="module")
def gaussian_linear_network():
    """NRE-B on the 2-d Gaussian-linear task: prior N(0, 0.1 I), x ~ N(theta, 0.1 I)."""
    prior = MultivariateNormal(torch.zeros(2), 0.1 * torch.eye(2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theta = prior.sample((2000,))
        x = theta + 0.1**0.5 * torch.randn_like(theta)
    settings = {"batch_size": 100, "learning_rate": 1e-3, "max_epochs": 30, "patience": 5, "hidden_features": 32,
                "num_atoms": 10}
    network, _ = train_ratio_estimator(theta, x, "nre_b", settings, seed=1, show_progress_bar=False)
    return prior, network


# Three observations x two dimensions: a Bonferroni threshold keeps the family-wise
# false-alarm rate at 1% (KS assumes independent draws; MCMC's are thinned to be nearly so).
P_THRESHOLD = 0.01 / 6


def _same_distribution(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-dimension two-sample KS p-values of [S, d] sample sets."""
    return [stats.ks_2samp(a[:, i].cpu().numpy(), b[:, i].cpu().numpy()).pvalue for i in range(a.shape[1])]


def test_prior_log_prob_is_minus_infinity_outside_the_support():
    box = BoxUniform(-torch.ones(2), torch.ones(2))
    theta = torch.tensor([[[0.0, 0.5], [1.5, 0.0]], [[-0.9, 0.9], [0.0, float("nan")]]])
    log_prob = prior_log_prob(box, theta)
    assert log_prob.shape == (2, 2)
    assert torch.equal(log_prob.isinf(), torch.tensor([[False, True], [False, True]]))
    assert log_prob[0, 0].item() == pytest.approx(-torch.log(torch.tensor(4.0)).item())
    gaussian = MultivariateNormal(torch.zeros(2), torch.eye(2))
    torch.testing.assert_close(prior_log_prob(gaussian, theta[:1]), gaussian.log_prob(theta[:1]))


@pytest.mark.parametrize("device", DEVICES)
def test_logit_matrix_in_chunks_equals_all_pairs(gaussian_linear_network, device: str):
    _, network = gaussian_linear_network
    network = network.to(device)
    theta, x = torch.randn(37, 2, device=device), torch.randn(5, 2, device=device)
    torch.testing.assert_close(logit_matrix(network, theta, x, max_pairs_per_chunk=12), network.all_pairs(theta, x))
    network.cpu()


def test_samplers_give_the_same_draws_whatever_the_pairs_per_call(gaussian_linear_network, monkeypatch):
    """The device's pairs per network call (a speed setting) splits SIR's logit matrix and MCMC's
    steps into more calls; it must not change a single draw."""
    prior, network = gaussian_linear_network
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))

    def draws() -> tuple[torch.Tensor, torch.Tensor]:
        return (sample_sir(network, prior, x, 50, seed=3)[0],
                sample_mcmc(network, prior, x, 40, num_chains=4, warmup_steps=10, seed=3))

    default = draws()
    monkeypatch.setattr(support, "CPU_PAIRS_PER_CALL", 8)  # SIR: one proposal per call; MCMC: 2 observations' 4 chains
    for a, b in zip(default, draws()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_sir_batched_matches_one_observation_at_a_time(gaussian_linear_network, device: str):
    prior, network = gaussian_linear_network
    network = network.to(device)
    batched, ess = sample_sir(network, prior, X_O, 500, num_proposals=20_000, seed=2)
    assert batched.shape == (3, 500, 2) and ess.shape == (3,)
    assert ((ess > 500) & (ess <= 20_000)).all()
    for m in range(3):
        single, _ = sample_sir(network, prior, X_O[m : m + 1], 500, num_proposals=20_000, seed=3 + m)
        assert min(_same_distribution(batched[m], single[0])) > P_THRESHOLD
    network.cpu()


@pytest.mark.parametrize("device", DEVICES)
def test_mcmc_batched_matches_one_observation_at_a_time(gaussian_linear_network, device: str):
    prior, network = gaussian_linear_network
    network = network.to(device)
    # Random-walk draws 20 steps apart are nearly independent here (measured: the
    # variance of the sample mean is within ~20% of the iid one); at thin 5 it is twice it.
    options = {"num_chains": 50, "warmup_steps": 100, "thin": 20}
    batched = sample_mcmc(network, prior, X_O, 500, seed=4, **options)
    assert batched.shape == (3, 500, 2) and batched.device.type == device
    for m in range(3):
        single = sample_mcmc(network, prior, X_O[m : m + 1], 500, seed=5 + m, **options)
        assert min(_same_distribution(batched[m], single[0])) > P_THRESHOLD
    network.cpu()


def test_mcmc_stays_inside_a_box_prior(gaussian_linear_network):
    """With a box [-0.2, 0.2]^2 and an x_o whose likelihood peaks outside it, the chains
    press against two edges; every proposal beyond them must be rejected, and the
    samples still match SIR from the box (which cannot leave it)."""
    _, network = gaussian_linear_network
    box = BoxUniform(-0.2 * torch.ones(2), 0.2 * torch.ones(2))
    x_o = torch.tensor([[1.2, -1.0]])
    samples = sample_mcmc(network, box, x_o, 1000, num_chains=50, warmup_steps=50, thin=20, seed=6)[0]
    assert ((samples >= -0.2) & (samples < 0.2)).all()
    assert samples[:, 0].max() > 0.195 and samples[:, 1].min() < -0.195
    assert samples[:, 0].mean() > 0.04 and samples[:, 1].mean() < -0.02
    reference, _ = sample_sir(network, box, x_o, 1000, num_proposals=20_000, seed=7)
    assert min(_same_distribution(samples, reference[0])) > P_THRESHOLD


def test_sir_warns_when_the_effective_sample_size_is_low(gaussian_linear_network):
    prior, network = gaussian_linear_network
    with pytest.warns(LowEffectiveSampleSizeWarning, match="effective sample size"):
        samples, ess = sample_sir(network, prior, X_O, 200, num_proposals=100, max_proposals=100, seed=7)
    assert samples.shape == (3, 200, 2)
    assert (ess < 200).all() and (ess >= 1).all()


class _NarrowGaussianLikelihood(torch.nn.Module):
    """The exact log-likelihood of x ~ N(theta, 0.03^2 I) in 2-d: under a U(-1, 1)^2 prior the posterior
    N(x, 0.03^2 I) covers 0.3% of the box, and an ESS of 500 needs about 2 x 10^5 prior proposals."""

    dim_theta, x_shape, sigma = 2, (2,), 0.03

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def all_pairs(self, theta, x):
        return -((theta[:, None] - x[None]) ** 2).sum(-1) / (2 * self.sigma**2)

    def per_observation(self, theta, x):
        return -((theta - x[:, None]) ** 2).sum(-1) / (2 * self.sigma**2)


class _TwoModes(torch.nn.Module):
    """A posterior with two separated modes: 0.7 N(x, 0.05^2 I) + 0.3 N(-x, 0.05^2 I) in 2-d."""

    dim_theta, x_shape, sigma, weight = 2, (2,), 0.05, 0.7

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def _log(self, theta, x):
        near = -((theta - x) ** 2).sum(-1) / (2 * self.sigma**2) + math.log(self.weight)
        mirrored = -((theta + x) ** 2).sum(-1) / (2 * self.sigma**2) + math.log(1 - self.weight)
        return torch.logaddexp(near, mirrored)

    def all_pairs(self, theta, x):
        return self._log(theta[:, None], x[None])

    def per_observation(self, theta, x):
        return self._log(theta, x[:, None])


def test_mcmc_jumps_between_separated_modes():
    network, box = _TwoModes(), BoxUniform(-torch.ones(2), torch.ones(2))
    angle = 2 * math.pi * torch.rand(12, generator=torch.Generator().manual_seed(0))
    x = 0.5 * torch.stack([angle.cos(), angle.sin()], dim=1)  # modes 1.0 apart, 20 sigma

    def share_of_the_heavier_mode(samples):
        return ((samples - x[:, None]).norm(dim=-1) < 0.3).float().mean(1)

    # Four chains each: where SIR started them all in one mode, differential-evolution moves
    # (differences of chains) cannot reach the other.
    moves_only = sample_mcmc(network, box, x, 4000, num_chains=4, thin=6, jump_every=None, seed=3)
    assert (share_of_the_heavier_mode(moves_only) - network.weight).abs().max() > 0.25
    jumps = sample_mcmc(network, box, x, 4000, num_chains=4, thin=6, seed=3)
    torch.testing.assert_close(share_of_the_heavier_mode(jumps), torch.full((12,), network.weight), atol=0.06, rtol=0)


def test_differential_evolution_leaves_the_posterior_invariant():
    """Exact posterior draws stay exact under the moves, with their mode-to-mode (gamma = 1)
    proposals: both halves move, each by differences of the other's current states."""
    network, box = _TwoModes(), BoxUniform(-torch.ones(2), torch.ones(2))
    x = torch.tensor([[0.5, 0.2], [-0.3, 0.6]])
    generator = torch.Generator().manual_seed(0)
    heavier = torch.rand(2, 4000, generator=generator) < network.weight
    state = torch.where(heavier[..., None], x[:, None], -x[:, None]) + network.sigma * torch.randn(
        2, 4000, 2, generator=generator)

    def log_target(theta):
        return prior_log_prob(box, theta) + network.per_observation(theta, x)

    current, moved = log_target(state), torch.zeros(2, 4000, dtype=torch.bool)
    for _ in range(20):
        state, current, accepted, _ = mcmc._differential_evolution(
            state, current, torch.full((2,), 2.38 / 2), torch.full((2,), 1e-3), log_target, generator)
        moved |= accepted
    assert moved.float().mean() > 0.9  # nearly every chain moved
    near = (state - x[:, None]).norm(dim=-1) < 0.3
    torch.testing.assert_close(near.float().mean(1), torch.full((2,), network.weight), atol=0.03, rtol=0)
    spread = torch.where(near[..., None], state - x[:, None], state + x[:, None]).std(dim=1)
    torch.testing.assert_close(spread, torch.full((2, 2), network.sigma), rtol=0.1, atol=0)
    torch.testing.assert_close(current, log_target(state))


def test_jump_moves_leave_the_posterior_invariant():
    """Exact posterior draws stay exact under jump moves whose centres sit mostly in the lighter
    mode: the proposal's density must enter the acceptance ratio, or the chains would drift there."""
    network, box = _TwoModes(), BoxUniform(-torch.ones(2), torch.ones(2))
    x = torch.tensor([[0.5, 0.2]])
    generator = torch.Generator().manual_seed(0)
    heavier = torch.rand(1, 4000, generator=generator) < network.weight
    state = torch.where(heavier[..., None], x, -x) + network.sigma * torch.randn(1, 4000, 2, generator=generator)
    centres = torch.cat([x.expand(2, 2), -x.expand(18, 2)])[None]  # 2 of 20 centres in the heavier mode

    def log_target(theta):
        return prior_log_prob(box, theta) + network.per_observation(theta, x)

    current, accepted = log_target(state), 0.0
    for _ in range(20):
        moved, current = mcmc._jump(state, current, centres, 0.08 * torch.eye(2)[None], log_target, generator)
        accepted += (moved != state).any(-1).float().mean().item() / 20
        state = moved
    assert accepted > 0.1  # the chains did move
    share = ((state - x).norm(dim=-1) < 0.3).float().mean().item()
    assert abs(share - network.weight) < 0.03  # 4000 chains: standard error 0.007
    spread = torch.where(((state - x).norm(dim=-1) < 0.3)[..., None], state - x, state + x).std(dim=1)
    torch.testing.assert_close(spread, torch.full((1, 2), network.sigma), rtol=0.1, atol=0)


def test_sir_adds_proposals_until_the_effective_sample_size_is_reached(monkeypatch):
    network, box = _NarrowGaussianLikelihood(), BoxUniform(-torch.ones(2), torch.ones(2))
    x = torch.tensor([[0.2, -0.3], [0.0, 0.5], [-0.6, 0.1]])
    with pytest.warns(LowEffectiveSampleSizeWarning):
        _, fixed_ess = sample_sir(network, box, x, 500, num_proposals=10_000, max_proposals=10_000, seed=1)
    assert (fixed_ess < 60).all()  # pi sigma^2 x 10^4 = 28: the old default resampled ~28 distinct points
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowEffectiveSampleSizeWarning)
        samples, ess = sample_sir(network, box, x, 500, num_proposals=10_000, seed=1)
    assert (ess >= 500).all() and (ess < 2000).all()  # grown as far as needed, not to the cap
    exact = x[:, None] + network.sigma * torch.randn(3, 5000, 2, generator=torch.Generator().manual_seed(0))
    for m in range(3):
        assert min(_same_distribution(samples[m], exact[m])) > P_THRESHOLD
        assert len(torch.unique(samples[m], dim=0)) > 300
    # Observations are weighed in groups that bound the memory; the groups change nothing.
    monkeypatch.setattr(sir, "MAX_LOG_WEIGHTS", 2**20)
    grouped, grouped_ess = sample_sir(network, box, x, 500, num_proposals=10_000, seed=1)
    torch.testing.assert_close(grouped, samples)
    torch.testing.assert_close(grouped_ess, ess)


@pytest.mark.parametrize("method", ["sir", "mcmc"])
def test_posterior_sampling_is_reproducible(gaussian_linear_network, method: str):
    prior, network = gaussian_linear_network
    posterior = RatioPosterior(network, prior)
    options = {"num_proposals": 5000} if method == "sir" else {"num_chains": 10, "warmup_steps": 20}
    first = posterior.sample(X_O, 100, method=method, seed=8, **options)
    assert torch.equal(first, posterior.sample(X_O, 100, method=method, seed=8, **options))
    assert not torch.equal(first, posterior.sample(X_O, 100, method=method, seed=9, **options))


@pytest.mark.parametrize("method", ["sir", "mcmc"])
def test_samplers_take_any_estimator_object(gaussian_linear_network, method: str):
    """The one estimator interface: a wrapped ratio network samples exactly as the bare one, and
    an NLE flow goes through the same samplers."""
    prior, network = gaussian_linear_network
    options = {"num_proposals": 2000} if method == "sir" else {"num_chains": 4, "warmup_steps": 10}
    bare = RatioPosterior(network, prior).sample(X_O, 40, method=method, seed=3, **options)
    estimator = NREEstimator.from_network(network, "nre", prior)
    assert torch.equal(RatioPosterior(estimator, prior).sample(X_O, 40, method=method, seed=3, **options), bare)
    torch.manual_seed(4)
    likelihood = NLEEstimator.from_hyperparameters({
        "method": "nle", "flow": "zuko_maf", "hidden_features": 8, "num_transforms": 1, "num_bins": 8,
        "dim_theta": 2, "x_shape": [2]}, prior)
    samples = RatioPosterior(likelihood, prior).sample(X_O, 40, method=method, seed=3, **options)
    assert samples.shape == (3, 40, 2) and torch.isfinite(samples).all()


def test_log_prob_unnormalized_shapes_and_support(gaussian_linear_network):
    _, network = gaussian_linear_network
    box = BoxUniform(-torch.ones(2), torch.ones(2))
    posterior = RatioPosterior(network, box)
    theta = torch.tensor([[0.1, 0.2], [0.5, -0.3], [2.0, 0.0]])
    one = posterior.log_prob_unnormalized(theta, X_O[0])
    assert one.shape == (3,) and one[2].item() == -float("inf")
    many = posterior.log_prob_unnormalized(theta[None].expand(3, 3, 2), X_O)
    assert many.shape == (3, 3)
    torch.testing.assert_close(many[0], one)
    expected = box.log_prob(theta[:2]) + network(theta[:2], X_O[:1].expand(2, 2))
    torch.testing.assert_close(one[:2], expected)


def test_posterior_refuses_bad_input(gaussian_linear_network):
    prior, network = gaussian_linear_network
    posterior = RatioPosterior(network, prior)
    with pytest.raises(ValueError, match="method"):
        posterior.sample(X_O, 10, method="hmc")
    with pytest.raises(ValueError, match="x: expected shape"):
        posterior.sample(torch.zeros(3, 5), 10)
    with pytest.raises(ValueError, match="prior"):
        RatioPosterior(network, MultivariateNormal(torch.zeros(3), torch.eye(3)))
    with pytest.raises(ValueError, match="num_chains"):
        sample_mcmc(network, prior, X_O, 10, num_chains=3)
    assert isinstance(posterior.network, RatioEstimator)


@pytest.mark.parametrize("sampler", [sample_sir, sample_mcmc])
def test_sampling_stops_when_no_proposal_has_a_finite_log_ratio(gaussian_linear_network, sampler):
    """A NaN/inf observation gives NaN logits: nothing to resample, and MCMC starts from SIR."""
    prior, network = gaussian_linear_network
    x = torch.tensor([[0.0, 0.0], [float("nan"), 0.0]])
    with pytest.raises(SamplingError, match=r"SIR: 1 of 2 observations \(first: index 1\) have a NaN log-ratio or none "
                                            r"finite over \d+ prior proposals; nothing to resample"):
        sampler(network, prior, x, 10, seed=0)
