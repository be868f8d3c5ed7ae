"""Every method through one interface: accuracy against exact Gaussian-linear posteriors,
reload equality in a fresh process, samplers for many observations."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from sbi_core.estimators import RATIO_LOSSES, build_posterior, load_estimator, save_estimator, train_estimator
from sbi_core.seeding import seed_everything
from sbi_core.tasks import BUILTIN_TASKS, gaussian_linear_posterior

TRAINING = {
    "flow": "zuko_maf",
    "hidden_features": 50,
    "num_transforms": 3,
    "num_bins": 8,
    "batch_size": 200,
    "learning_rate": 1e-3,
    "max_epochs": 200,
    "patience": 10,
    "validation_fraction": 0.1,
    "num_blocks": 2,
    "num_atoms": 10,
    "gamma": 1.0,
    "regularization_strength": 100.0,
}
SAMPLING_SIR = {"sampler": "sir"}
SAMPLING_MCMC = {"sampler": "mcmc", "num_chains": 20, "warmup_steps": 100, "thin": 5}


@pytest.fixture(scope="module")
def gaussian_linear_npe():
    task = BUILTIN_TASKS["gaussian_linear"]()
    seed_everything(0)
    theta = task.prior.sample((5000,))
    x = task.simulate(theta)
    return task, *train_estimator("npe", theta, x, task.prior, TRAINING)


def test_npe_matches_exact_gaussian_linear_posterior(gaussian_linear_npe):
    """Mean within 0.06 and variances within 30% of the exact N(x/2, 0.05 I), in all 10 dims.

    The posterior std is 0.22 and the prior's 0.32; an estimator that ignored x
    (the prior) would be off by ~0.15 in the mean and 100% in the variance.
    """
    task, network, hyperparameters, history = gaussian_linear_npe
    posterior = build_posterior(network, hyperparameters, task.prior, SAMPLING_SIR)
    seed_everything(1)
    theta_o = torch.full((1, 10), 0.3)
    x_o = task.simulate(theta_o)
    exact = gaussian_linear_posterior(x_o[0])
    samples = posterior.sample(x_o, 4000)[0]
    _assert_log_density_tracks(posterior.log_density(samples[None], x_o)[0], exact.log_prob(samples))
    assert (samples.mean(0) - exact.mean).abs().max() < 0.06
    variance_ratio = samples.var(0) / exact.covariance_matrix.diagonal()
    assert ((variance_ratio - 1).abs() < 0.3).all(), variance_ratio
    off_diagonal = torch.cov(samples.T) - torch.diag(torch.cov(samples.T).diagonal())
    assert off_diagonal.abs().max() < 0.015
    assert history["epochs_trained"] == len(history["training_loss"]) >= 10
    assert history["validation_loss"][-1] < history["validation_loss"][0]


def test_npe_reloads_in_a_fresh_process_with_identical_log_probs(gaussian_linear_npe, tmp_path):
    task, network, hyperparameters, _ = gaussian_linear_npe
    path = tmp_path / "npe.pt"
    save_estimator(path, network, hyperparameters)
    seed_everything(2)
    theta = task.prior.sample((7,))
    x = task.simulate(theta)
    torch.save({"theta": theta, "x": x}, tmp_path / "batch.pt")
    with torch.no_grad():
        expected = network.log_prob(theta.unsqueeze(0), x)
    script = textwrap.dedent(
        f"""
        import torch
        from sbi_core.estimators import load_estimator
        raw = torch.load({str(path)!r}, weights_only=True)  # a plain dict of tensors and a JSON string
        assert set(raw) == {{"state_dict", "hyperparameters"}}
        network, _ = load_estimator({str(path)!r})
        batch = torch.load({str(tmp_path / 'batch.pt')!r}, weights_only=True)
        with torch.no_grad():
            torch.save(network.log_prob(batch["theta"].unsqueeze(0), batch["x"]), {str(tmp_path / 'out.pt')!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    reloaded = torch.load(tmp_path / "out.pt", weights_only=True)
    torch.testing.assert_close(reloaded, expected, rtol=0, atol=0)


def test_nle_trains_saves_and_samples_a_sensible_posterior(tmp_path):
    """NLE on a 2-d Gaussian-linear problem: MCMC posterior mean near the exact one."""
    prior = torch.distributions.MultivariateNormal(torch.zeros(2), 0.1 * torch.eye(2))
    seed_everything(3)
    theta = prior.sample((2000,))
    x = theta + 0.1**0.5 * torch.randn_like(theta)
    settings = dict(TRAINING, max_epochs=60)
    network, hyperparameters, _ = train_estimator("nle", theta, x, prior, settings)
    save_estimator(tmp_path / "nle.pt", network, hyperparameters)
    network, hyperparameters = load_estimator(tmp_path / "nle.pt")
    posterior = build_posterior(network, hyperparameters, prior, SAMPLING_MCMC)
    x_o = torch.tensor([[0.4, -0.2], [-0.3, 0.1]])
    both = posterior.sample(x_o, 1000)
    log_density = posterior.log_density(both, x_o)
    for m in range(2):  # exact: N(x_o / 2, 0.05 I)
        exact = torch.distributions.MultivariateNormal(x_o[m] / 2, 0.05 * torch.eye(2))
        _assert_log_density_tracks(log_density[m], exact.log_prob(both[m]))
    samples = both[0]
    assert (samples.mean(0) - x_o[0] / 2).abs().max() < 0.06
    assert ((samples.var(0) / 0.05 - 1).abs() < 0.35).all()


def _assert_log_density_tracks(estimate: torch.Tensor, exact: torch.Tensor, tolerance: float = 0.35) -> None:
    """The estimated log-density equals the exact one up to a constant: the residual spread is
    under `tolerance` times the exact log-density's spread over the samples (0 for a perfect
    estimator, about 1 or more for one that ignores theta or pairs it with another observation)."""
    residual = estimate - exact
    assert torch.isfinite(estimate).all()
    assert residual.std() < tolerance * exact.std(), (residual.std(), exact.std())


def _two_d_gaussian_linear(num: int):
    prior = torch.distributions.MultivariateNormal(torch.zeros(2), 0.1 * torch.eye(2))
    theta = prior.sample((num,))
    return prior, theta, theta + 0.1**0.5 * torch.randn_like(theta)


@pytest.mark.parametrize("method", sorted(RATIO_LOSSES))
def test_ratio_methods_through_the_common_interface(method, tmp_path):
    """Each ratio method trains, reloads in a fresh process with identical logits, and its
    posterior for three observations at once has the exact posterior's means N(x/2, 0.05 I)."""
    seed_everything(4)
    prior, theta, x = _two_d_gaussian_linear(3000)
    settings = dict(TRAINING, max_epochs=40, num_atoms=5)
    network, hyperparameters, history = train_estimator(method, theta, x, prior, settings)
    assert hyperparameters["method"] == method and hyperparameters["loss"] == RATIO_LOSSES[method]
    assert history["epochs_trained"] >= 5
    save_estimator(tmp_path / "r.pt", network, hyperparameters)
    probe = {"theta": theta[:6], "x": x[:6]}
    torch.save(probe, tmp_path / "probe.pt")
    script = textwrap.dedent(
        f"""
        import torch
        from sbi_core.estimators import load_estimator
        network, _ = load_estimator({str(tmp_path / 'r.pt')!r})
        probe = torch.load({str(tmp_path / 'probe.pt')!r}, weights_only=True)
        with torch.no_grad():
            torch.save(network.all_pairs(probe["theta"], probe["x"]), {str(tmp_path / 'out.pt')!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    with torch.no_grad():
        expected = network.all_pairs(probe["theta"], probe["x"])
    torch.testing.assert_close(torch.load(tmp_path / "out.pt", weights_only=True), expected, rtol=0, atol=0)

    posterior = build_posterior(network, hyperparameters, prior, SAMPLING_SIR)
    x_o = torch.tensor([[0.4, -0.2], [0.0, 0.3], [-0.3, -0.3]])
    samples = posterior.sample(x_o, 500)
    assert samples.shape == (3, 500, 2)
    assert (samples.mean(1) - x_o / 2).abs().max() < 0.1
    log_density = posterior.log_density(samples, x_o)
    for m in range(3):
        exact = torch.distributions.MultivariateNormal(x_o[m] / 2, 0.05 * torch.eye(2))
        # 0.5: 40 epochs, and BNRE is conservative by design (a flatter log-ratio)
        _assert_log_density_tracks(log_density[m], exact.log_prob(samples[m]), tolerance=0.5)


def test_unknown_method_is_refused():
    task = BUILTIN_TASKS["gaussian_linear"]()
    with pytest.raises(ValueError, match="unknown method 'npx'"):
        train_estimator("npx", torch.zeros(10, 10), torch.zeros(10, 10), task.prior, TRAINING)
