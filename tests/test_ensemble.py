"""Ensembles (sbi_core.estimators.ensemble): the log of the mean of normalised member ratios, a
posterior that is the mixture of the members', and one artifact that reloads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import Tensor, nn
from torch.distributions import Normal

from sbi_core.estimators import EnsembleEstimator, Estimator, load_estimator, train_estimator
from sbi_core.estimators.ensemble import LowNormaliserSampleSizeWarning, _mixture
from sbi_core.estimators.posterior import PosteriorEstimate
from sbi_core.pipeline.train import write_loss_history

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# 1-d Gaussian: prior N(0, 1), x ~ N(theta, SIGMA^2). Member k believes x ~ N(theta + SHIFT[k], SIGMA^2),
# so its normalised ratio is N(x; theta + s, SIGMA^2) / N(x - s; 0, 1 + SIGMA^2) and its posterior is the
# exact posterior of x - s: N(B (x - s), B SIGMA^2) with B = 1 / (1 + SIGMA^2).
SIGMA = 0.5
SHIFTS = (-1.0, 0.0, 1.5)
B = 1 / (1 + SIGMA**2)
PRIOR = Normal(torch.zeros(1), torch.ones(1))
PRIOR_1D = torch.distributions.Independent(PRIOR, 1)


class _ShiftedGaussianRatio(Estimator):
    """A ratio 'member' with an exact log-ratio, plus an arbitrary function of x (what NRE-B cannot see)."""

    def __init__(self, shift: float, offset: float, sigma: float = SIGMA):
        super().__init__(nn.Linear(1, 1), {"method": "nre", "dim_theta": 1, "x_shape": [1]}, PRIOR_1D)
        self.shift, self.offset, self.sigma = shift, offset, sigma

    def _log(self, theta: Tensor, x: Tensor) -> Tensor:
        log_likelihood = Normal(theta + self.shift, self.sigma).log_prob(x)
        evidence = Normal(0.0, math.sqrt(1 + self.sigma**2)).log_prob(x - self.shift)
        return log_likelihood - evidence + self.offset * x**2

    def _all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        return self._log(theta[:, None, 0], x[None, :, 0])

    def _per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        return self._log(theta[..., 0], x[:, None, 0])


def _members() -> list[Estimator]:
    # Offsets up to 6 x^2 nats: unnormalised, they would give one member all the weight.
    return [_ShiftedGaussianRatio(shift, offset) for shift, offset in zip(SHIFTS, (0.0, 3.0, -6.0))]


def _mixture_cdf(value: np.ndarray, x: float) -> np.ndarray:
    return np.mean([stats.norm.cdf(value, B * (x - s), math.sqrt(B) * SIGMA) for s in SHIFTS], axis=0)


def test_ensemble_log_ratio_is_the_log_mean_of_normalised_ratios():
    ensemble = EnsembleEstimator(_members())
    theta, x = torch.linspace(-3, 3, 61)[:, None], torch.tensor([[-1.0], [0.4], [1.2]])
    exact = torch.logsumexp(torch.stack([
        Normal(theta + s, SIGMA).log_prob(x.T) - Normal(0.0, math.sqrt(1 + SIGMA**2)).log_prob(x.T - s)
        for s in SHIFTS]), 0) - math.log(len(SHIFTS))
    got = ensemble.log_ratio(theta, x)
    # The normalisers come from 2^14 prior draws: exact to about a percent.
    assert torch.allclose(got, exact, atol=0.03)
    per_observation = ensemble.log_ratio(theta.T[:, :, None].expand(3, -1, -1), x)
    assert torch.allclose(per_observation, got.T, atol=1e-5)
    members = ensemble.member_log_ratios(theta, x)
    assert members.shape == (3, 61, 3)
    assert torch.allclose((members.exp() * PRIOR.log_prob(theta).exp()[None]).sum(1) * 0.1, torch.ones(3, 3), atol=0.05)


@pytest.mark.parametrize("sampler", ["sir", "mcmc"])
def test_ensemble_posterior_is_the_mixture_of_members(sampler: str):
    ensemble = EnsembleEstimator(_members())
    torch.manual_seed(0)
    x = torch.tensor([[0.4], [1.2]])
    sampling = {"sampler": sampler, "num_chains": 100, "warmup_steps": 200, "thin": 10}
    samples = ensemble.posterior(sampling).sample(x, 4000)
    for m in range(2):
        p_value = stats.kstest(samples[m, :, 0].numpy(), lambda v: _mixture_cdf(v, float(x[m]))).pvalue
        assert p_value > 1e-3, (m, p_value)


def test_mixture_of_posteriors_samples_and_evaluates_every_component():
    def gaussian(mean: float) -> PosteriorEstimate:
        return PosteriorEstimate(
            sample=lambda x, n: mean + torch.randn(len(x), n, 1),
            log_density=lambda theta, x: Normal(mean, 1.0).log_prob(theta[..., 0]),
        )

    mixture = _mixture([gaussian(-2.0), gaussian(3.0)])
    torch.manual_seed(1)
    samples = mixture.sample(torch.zeros(2, 1), 5000)
    assert samples.shape == (2, 5000, 1)
    cdf = lambda v: 0.5 * stats.norm.cdf(v, -2.0) + 0.5 * stats.norm.cdf(v, 3.0)  # noqa: E731
    assert stats.kstest(samples[1, :, 0].numpy(), cdf).pvalue > 1e-3
    theta = torch.tensor([[[0.0], [3.0]]])
    expected = torch.log(0.5 * Normal(-2.0, 1.0).log_prob(theta).exp() + 0.5 * Normal(3.0, 1.0).log_prob(theta).exp())
    assert torch.allclose(mixture.log_density(theta, torch.zeros(1, 1)), expected[..., 0], atol=1e-5)


def test_normalisers_are_computed_once_per_observation_across_groups(monkeypatch):
    """A sampler evaluates its observations group after group, step after step: each observation's
    normalisers (2^14 prior draws per member) are computed once, and give the same log-ratios."""
    ensemble = EnsembleEstimator(_members())
    computed = []
    compute = ensemble._compute_log_normalisers
    monkeypatch.setattr(ensemble, "_compute_log_normalisers", lambda x: computed.append(len(x)) or compute(x))
    x = torch.tensor([[-1.0], [0.4], [1.2], [2.0]])
    theta = torch.linspace(-2, 2, 5)[None, :, None].expand(4, -1, -1)
    whole = ensemble.log_ratio(theta, x)
    assert computed == [4]
    for _ in range(3):  # steps
        groups = [ensemble.log_ratio(theta[start:start + 3], x[start:start + 3]) for start in (0, 3)]
        assert torch.equal(torch.cat(groups), whole)
    assert ensemble.log_ratio(theta[:1], torch.tensor([[0.7]])).shape == (1, 5) and computed == [4, 1]
    ensemble.prior = PRIOR_1D  # another prior: other normalisers
    ensemble.log_ratio(theta, x)
    assert computed == [4, 1, 4]
    with torch.enable_grad():  # a gradient in x (experimental design) is never served from the cache
        x_grad = x.clone().requires_grad_(True)
        ensemble.log_ratio(theta, x_grad).sum().backward()
    assert computed == [4, 1, 4, 4] and x_grad.grad is not None and torch.isfinite(x_grad.grad).all()


def test_narrow_posterior_warns_that_the_normaliser_rests_on_few_draws():
    narrow = EnsembleEstimator([_ShiftedGaussianRatio(0.0, 0.0, 1e-4), _ShiftedGaussianRatio(0.0, 0.0, 1e-4)])
    with pytest.warns(LowNormaliserSampleSizeWarning, match="normaliser rests on an effective"):
        narrow.log_ratio(torch.zeros(2, 1), torch.tensor([[0.5]]))


@pytest.mark.parametrize("method", ["nre", "nle"])
def test_trained_ensemble_reloads_and_its_members_differ(tmp_path, method: str):
    torch.manual_seed(0)
    theta = PRIOR_1D.sample((1000,))
    x = theta + SIGMA * torch.randn_like(theta)
    training = {"batch_size": 100, "learning_rate": 1e-3, "max_epochs": 3, "patience": 3,
                "validation_fraction": 0.1, "hidden_features": 8, "num_blocks": 1, "num_atoms": 5,
                "flow": "zuko_maf", "num_transforms": 1, "num_bins": 8,
                "ensemble_members": 3, "ensemble_bootstrap": True}
    torch.manual_seed(1)
    ensemble, history = train_estimator(method, theta, x, PRIOR_1D, training)
    assert isinstance(ensemble, EnsembleEstimator) and ensemble.num_members == 3
    assert ensemble.hyperparameters["ensemble"] == {"members": 3, "bootstrap": True}
    assert len(history["members"]) == 3 and history["epochs_trained"] == 3
    grid, x_o = torch.linspace(-2, 2, 9)[:, None], torch.tensor([[0.3], [-0.5]])
    members = ensemble.member_log_ratios(grid, x_o)
    assert (members[0] - members[1]).abs().max() > 1e-3  # other seeds, other resamples
    ensemble.save(tmp_path / "ensemble.pt")
    reloaded = load_estimator(tmp_path / "ensemble.pt", prior=PRIOR_1D)
    assert isinstance(reloaded, EnsembleEstimator) and reloaded.num_members == 3
    assert torch.allclose(reloaded.log_ratio(grid, x_o), ensemble.log_ratio(grid, x_o), atol=1e-5)
    # The same seed trains the same ensemble.
    torch.manual_seed(1)
    again, _ = train_estimator(method, theta, x, PRIOR_1D, training)
    assert torch.allclose(again.log_ratio(grid, x_o), ensemble.log_ratio(grid, x_o), atol=1e-5)


def test_loss_history_has_a_column_pair_per_member(tmp_path):
    losses = {"training_loss": [3.0, 2.0], "validation_loss": [3.1, 2.5],
              "members": [{"training_loss": [3.0, 2.0], "validation_loss": [3.1, 2.5]},
                          {"training_loss": [2.9], "validation_loss": [3.0]}]}
    write_loss_history(str(tmp_path / "h.csv"), losses)
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines == ["epoch,training_loss,validation_loss,training_loss_2,validation_loss_2",
                     "1,3,3.1,2.9,3", "2,2,2.5,,"]


def test_members_of_different_methods_are_refused():
    other = _ShiftedGaussianRatio(0.0, 0.0)
    other.hyperparameters["method"] = "nle"
    other.spec = type(other.spec)(**{**other.spec.__dict__, "name": "nle"})
    with pytest.raises(ValueError, match="members: expected one method and shape"):
        EnsembleEstimator([_ShiftedGaussianRatio(0.0, 0.0), other])
