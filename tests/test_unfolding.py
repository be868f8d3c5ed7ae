"""Neural empirical Bayes: exact answers (Gaussian smearing, with the exact likelihood and with trained
NLE and NRE), the roulette's unbiasedness, the efficiency correction, the source flow's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sbi.utils import BoxUniform

from sbi_core.diagnostics import c2st
from sbi_core.estimators import train_estimator
from sbi_core.tasks import BUILTIN_TASKS
from sbi_core.tasks.falling_spectrum import falling_spectrum_log_likelihood
from sbi_core.tasks.gaussian_smearing import BIAS, NOISE_STD, gaussian_smearing_log_likelihood
from sbi_core.unfolding import FitSettings, LikelihoodModel, NEBLoss, SourceFlow, fit_source, load_source
from sbi_core.unfolding.objective import log_mean_ratio, roulette_log_mean_ratio
from sbi_core.unfolding.population import simulate_population
from sbi_core.unfolding.posteriors import empirical_bayes_posterior
from sbi_core.unfolding.sources import BUILTIN_SOURCES

SOURCE_MEAN, SOURCE_STD = 1.0, 1.5
POPULATION = 10_000
FIT = FitSettings(num_atoms=128, batch_size=128, steps=600)


@pytest.fixture(scope="module")
def smearing_population() -> torch.Tensor:
    """x = theta + N(b, sigma^2), theta ~ N(1, 1.5^2): 10,000 observations."""
    generator = torch.Generator().manual_seed(11)
    theta = SOURCE_MEAN + SOURCE_STD * torch.randn(POPULATION, 1, generator=generator)
    return theta + BIAS + NOISE_STD * torch.randn(POPULATION, 1, generator=generator)


@pytest.fixture(scope="module")
def smearing_task():
    return BUILTIN_TASKS["gaussian_smearing"]()


def _exact_answer(x: torch.Tensor) -> tuple[float, float, float, float]:
    """The maximum-likelihood Gaussian source and the standard errors of its mean and sd."""
    n, variance = len(x), x.double().var().item()
    std = math.sqrt(variance - NOISE_STD**2)
    return x.double().mean().item() - BIAS, std, math.sqrt(variance / n), variance * math.sqrt(2 / n) / (2 * std)


def _fit(model, x: torch.Tensor, task, seed: int) -> torch.Tensor:
    """The source fitted by NEB with `model`: 20,000 samples. A small flow (2 transforms, 4 bins):
    its capacity is NEB's regulariser (3 x [32, 32], 8 bins follows the population's
    fluctuations: C2ST 0.54 against the true source with the exact likelihood, 0.51 with this one)."""
    torch.manual_seed(seed)  # the flow's initial weights: not whatever state earlier tests left behind
    source = SourceFlow.for_prior(task.prior, transforms=2, hidden_features=[32], bins=4)
    losses = fit_source(model, x, source, FIT, seed=seed, progress=False)
    assert losses[-1] < losses[0]
    with torch.no_grad():
        return source().sample((20_000,)).double()


def _check_against_truth(samples: torch.Tensor, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    truth = SOURCE_MEAN + SOURCE_STD * torch.randn(5000, 1, generator=generator)
    assert c2st(truth, samples[:5000].float(), seed=seed).accuracy <= 0.55


def test_exact_likelihood_recovers_the_maximum_likelihood_source(smearing_population, smearing_task):
    model = LikelihoodModel(gaussian_smearing_log_likelihood, 1, (1,))
    samples = _fit(model, smearing_population, smearing_task, seed=1)
    mean, std, mean_err, std_err = _exact_answer(smearing_population)
    assert abs(samples.mean().item() - mean) < 3 * mean_err, (samples.mean().item(), mean, mean_err)
    assert abs(samples.std().item() - std) < 3 * std_err, (samples.std().item(), std, std_err)
    _check_against_truth(samples, seed=1)


@pytest.mark.parametrize("method", ["nle", "nre"])
def test_trained_estimators_recover_the_maximum_likelihood_source(method, smearing_population, smearing_task):
    """Three estimators, each trained on its own 4000 simulations: the mean of their unfolded means
    (and sds) lies within three standard errors of the exact answer, the error being the
    population's and the estimators' spread over replicas together (what `unfold` reports as the
    total band). One estimator alone misses by up to 5 population standard errors: measured over
    training seeds 5-7, NRE-B's mean by -0.4, -4.7, -5.4 and its sd by +0.7, +3.3, +2.3 (an
    overconfident ratio makes the source too wide), NLE's within 2."""
    training = {"hidden_features": 32, "num_transforms": 2, "batch_size": 200, "learning_rate": 1e-3,
                "max_epochs": 60, "patience": 8, "validation_fraction": 0.1, "flow": "zuko_maf", "num_bins": 8,
                "num_blocks": 2, "num_atoms": 10}
    moments = []
    for replica in range(3):
        torch.manual_seed(5 + replica)
        theta = smearing_task.prior.sample((4000,))
        estimator, _ = train_estimator(method, theta, smearing_task.simulate(theta), smearing_task.prior, training)
        samples = _fit(estimator, smearing_population, smearing_task, seed=2 + replica)
        moments.append((samples.mean().item(), samples.std().item()))
        if replica == 0:
            _check_against_truth(samples, seed=2)
    mean, std, mean_err, std_err = _exact_answer(smearing_population)
    for column, exact, population_err in ((0, mean, mean_err), (1, std, std_err)):
        values = np.array([m[column] for m in moments])
        total_err = math.sqrt(population_err**2 + values.var(ddof=1) / len(values))
        assert abs(values.mean() - exact) < 3 * total_err, (values, exact, population_err, total_err)


def test_roulette_is_unbiased_where_the_biased_estimator_is_not():
    """Log-normal ratios: log E[r] = mu + s^2 / 2 exactly; L_K falls short by about Var(r) / (2 K E[r]^2)."""
    mu, s, atoms, replicates, p = 0.0, 1.0, 4, 40_000, 0.25
    generator = torch.Generator().manual_seed(0)
    exact = mu + s**2 / 2
    biased = log_mean_ratio(mu + s * torch.randn(atoms, replicates, generator=generator, dtype=torch.float64))
    estimates = []
    for _ in range(replicates // 200):
        extra = int(math.log1p(-torch.rand((), generator=generator).item()) // math.log1p(-p)) + 1
        log_ratio = mu + s * torch.randn(atoms + extra, 200, generator=generator, dtype=torch.float64)
        estimates.append(roulette_log_mean_ratio(log_ratio, atoms, p))
    roulette = torch.cat(estimates)
    stderr = roulette.std().item() / math.sqrt(len(roulette))
    assert abs(roulette.mean().item() - exact) < 4 * stderr
    assert exact - biased.mean().item() > 0.1  # the bias of L_4 here is about 0.2 nats


def test_efficiency_correction_recovers_the_spectrum_before_detection():
    """Falling spectrum with a turn-on efficiency: the detected population is thinned; the fit with the
    efficiency term recovers the true power law, the fit without it the thinned one."""
    task = BUILTIN_TASKS["falling_spectrum"]()
    source = BUILTIN_SOURCES["falling_spectrum"]()
    _, x, _ = simulate_population(task, source, 5000, seed=4, progress=False)
    model = LikelihoodModel(falling_spectrum_log_likelihood, 1, (1,))
    truth = source.sample((2000,))
    settings = FitSettings(num_atoms=256, batch_size=250, steps=300)
    accuracies = {}
    for corrected in (True, False):
        fitted = SourceFlow.for_prior(task.prior, transforms=3, hidden_features=[32, 32])
        fit_source(model, torch.as_tensor(x), fitted, settings, task.efficiency if corrected else None, seed=3,
                   progress=False)
        with torch.no_grad():
            accuracies[corrected] = c2st(truth, fitted().sample((2000,)), seed=0).accuracy
    assert accuracies[True] <= 0.55
    assert accuracies[False] > accuracies[True] + 0.03


def test_source_stays_in_the_prior_box_and_reloads_from_weights_only(tmp_path):
    prior = BoxUniform(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 5.0]))
    source = SourceFlow.for_prior(prior, transforms=2, hidden_features=[16])
    with torch.no_grad():
        samples = source().sample((5000,))
    assert bool(prior.support.check(samples).all())
    # The untrained source is the prior's image: roughly uniform on the box.
    assert samples.mean(0).numpy() == pytest.approx([0.0, 2.5], abs=0.15)
    source.save(tmp_path / "source.pt", {"seed": 1})
    payload = torch.load(tmp_path / "source.pt", weights_only=True)
    assert set(payload) == {"state_dict", "hyperparameters", "provenance"}
    reloaded = load_source(tmp_path / "source.pt")
    probe = torch.tensor([[0.3, 1.0], [-0.9, 4.9]])
    assert torch.allclose(reloaded().log_prob(probe), source().log_prob(probe))


def test_gaussian_prior_source_is_unbounded_and_standardised():
    prior = torch.distributions.MultivariateNormal(torch.full((2,), 3.0), 4.0 * torch.eye(2))
    source = SourceFlow.for_prior(prior, transforms=1, hidden_features=[8])
    with torch.no_grad():
        samples = source().sample((20_000,))
    assert samples.mean(0).numpy() == pytest.approx([3.0, 3.0], abs=0.1)
    assert samples.std(0).numpy() == pytest.approx([2.0, 2.0], abs=0.1)


def test_loading_an_estimator_file_as_a_source_is_refused(tmp_path):
    from sbi_core.io import save_state

    save_state(tmp_path / "npe.pt", {}, {"method": "npe"})
    with pytest.raises(ValueError, match="not a fitted unfolding source"):
        load_source(tmp_path / "npe.pt")


def test_loss_scores_all_pairs_in_one_pass():
    """The [K, B] matrix is one call of all_pairs: no loop over atoms or observations."""
    calls = []

    def log_likelihood(theta, x):
        calls.append((theta.shape, x.shape))
        return -0.5 * (x.T - theta) ** 2

    prior = BoxUniform(-torch.ones(1), torch.ones(1))
    loss = NEBLoss(LikelihoodModel(log_likelihood, 1, (1,)), num_atoms=64)
    value = loss(SourceFlow.for_prior(prior, transforms=1, hidden_features=[8]), torch.zeros(32, 1))
    assert calls == [(torch.Size([64, 1]), torch.Size([32, 1]))]
    value.backward()


def test_empirical_bayes_posterior_is_likelihood_times_the_fitted_source(smearing_population, smearing_task):
    """Against p(theta | x) ∝ p(x | theta) q(theta) computed on a fine grid, for a source fitted briefly
    (any shape will do: the sampler must follow the source, not the training prior)."""
    model = LikelihoodModel(gaussian_smearing_log_likelihood, 1, (1,))
    source = SourceFlow.for_prior(smearing_task.prior, transforms=2, hidden_features=[16])
    fit_source(model, smearing_population, source, FitSettings(num_atoms=128, batch_size=250, steps=60), seed=1,
               progress=False)
    x = torch.tensor([[-1.0], [1.5], [4.0]])
    grid = torch.linspace(-4.999, 4.999, 20_001)[:, None]
    with torch.no_grad():
        log_posterior = gaussian_smearing_log_likelihood(grid, x) + source().log_prob(grid)[:, None]  # [G, 3]
    weights = torch.softmax(log_posterior.double(), dim=0)
    exact_mean = (weights * grid.double()).sum(0)
    exact_std = ((weights * (grid.double() - exact_mean) ** 2).sum(0)).sqrt()
    samples = empirical_bayes_posterior(model, source, x, 4000, seed=0, num_proposals=200_000).double()[:, :, 0]
    stderr = exact_std / math.sqrt(4000)
    assert ((samples.mean(1) - exact_mean).abs() < 4 * stderr + 0.01).all(), (samples.mean(1), exact_mean)
    np.testing.assert_allclose(samples.std(1).numpy(), exact_std.numpy(), rtol=0.06)
    # Under the training prior instead (flat on the box) the posterior mean would be x - b: the source matters.
    assert (exact_mean - (x[:, 0] - BIAS)).abs().max() > 0.2


@pytest.mark.parametrize("module", ["source", "objective", "fit", "exact", "spectra", "regenerate"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"sbi_core.unfolding.{module}"), verbose=False)
    assert result.attempted > 0 and result.failed == 0
