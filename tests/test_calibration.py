"""Calibration diagnostics on a conjugate Gaussian model, against the exact posterior and sbi 0.27.

Model: theta ~ N(0, I_3), x | theta ~ N(theta, I_3), so p(theta | x) = N(x / 2, I / 2).
Posteriors "of width k" are N(x / 2, k^2 I / 2): k = 1 is exact, k = 0.5
overconfident, k = 2 conservative. The same samples go to our code and sbi's.
C2ST against sbi's is checked in test_diagnostics.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sbi.diagnostics import check_tarp, run_sbc, run_tarp
from sbi.diagnostics.sbc import check_uniformity_frequentist

from sbi_core.diagnostics import (
    calibrate,
    coverage_band,
    coverage_verdict,
    hpd_credibility,
    posterior_predictive_check,
    sbc_ranks,
    sbc_uniformity,
    tarp,
    tarp_ecp,
    tarp_ranks,
    tarp_uniform_references,
)

DIM, NUM_SIMULATIONS, NUM_SAMPLES = 3, 500, 500


def _log_density(theta: np.ndarray, x: np.ndarray, width: float) -> np.ndarray:
    """log N(theta; x / 2, width^2 / 2 I) up to a constant; theta [..., S, d], x [..., d]."""
    return -np.sum((theta - x[..., None, :] / 2) ** 2, axis=-1) / width**2


class FixedSamples:
    """Stands in for an sbi posterior: returns given samples, so sbi's run_sbc / run_tarp see ours."""

    def __init__(self, samples: np.ndarray, width: float = 1.0):
        self.samples, self.width = torch.as_tensor(samples), width

    def sample_batched(self, sample_shape, x, show_progress_bars=False):
        assert tuple(sample_shape) == (self.samples.shape[1],) and len(x) == len(self.samples)
        return self.samples.transpose(0, 1)  # sbi: [S, N, d]

    def log_prob(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(_log_density(theta.numpy(), x.numpy(), self.width))


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(2024)
    theta = rng.normal(size=(NUM_SIMULATIONS, DIM))
    x = theta + rng.normal(size=(NUM_SIMULATIONS, DIM))
    noise = rng.normal(size=(NUM_SIMULATIONS, NUM_SAMPLES, DIM)) / np.sqrt(2)
    references = tarp_uniform_references(theta, rng)

    def posterior(width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Samples [N, S, d], their log-densities [N, S] and the truths' log-densities [N]."""
        samples = x[:, None, :] / 2 + width * noise
        return samples, _log_density(samples, x, width), _log_density(theta[:, None, :], x, width)[:, 0]

    return theta, x, references, posterior


def test_sbc_ranks_equal_sbi(model):
    """Parameter ranks and log-density ranks are sbi's run_sbc ranks exactly, on the same samples."""
    theta, x, _, posterior = model
    samples, log_density_samples, log_density_true = posterior(1.0)
    ours = sbc_ranks(theta, samples)
    ours_density = sbc_ranks(log_density_true[:, None], log_density_samples[..., None])[:, 0]

    theta_t, x_t, posterior_t = torch.as_tensor(theta), torch.as_tensor(x), FixedSamples(samples)
    sbi_ranks, _ = run_sbc(theta_t, x_t, posterior_t, NUM_SAMPLES, show_progress_bar=False)
    sbi_density, _ = run_sbc(
        theta_t, x_t, posterior_t, NUM_SAMPLES, reduce_fns=posterior_t.log_prob, show_progress_bar=False
    )
    np.testing.assert_array_equal(ours, sbi_ranks.numpy().astype(int))
    np.testing.assert_array_equal(ours_density, sbi_density[:, 0].numpy().astype(int))


def test_sbc_ks_pvalues_agree_with_sbi(model):
    """Our KS test jitters the discrete ranks, sbi's compares r / S with U(0, 1): p-values within 0.03."""
    theta, x, _, posterior = model
    for width in (1.0, 0.8):
        samples, _, _ = posterior(width)
        ranks = sbc_ranks(theta, samples)
        ours = sbc_uniformity(ranks, NUM_SAMPLES)["ks_pvalues"]
        # the KS p-values of sbi's check_sbc, without its two classifier tests
        theirs = check_uniformity_frequentist(torch.as_tensor(ranks, dtype=torch.float32), NUM_SAMPLES)
        np.testing.assert_allclose(ours, theirs.numpy(), atol=0.03)


def test_tarp_ecp_and_atc_agree_with_sbi(model):
    """On sbi's alpha grid our ECP is sbi's up to ties on grid points; ATC on our [0, 1] grid within 0.01."""
    theta, _, references, posterior = model
    for width in (1.0, 0.5, 2.0):
        samples, _, _ = posterior(width)
        ecp_sbi, alpha_sbi = run_tarp(
            torch.as_tensor(theta), torch.zeros(NUM_SIMULATIONS, DIM), FixedSamples(samples),
            references=torch.as_tensor(references), num_posterior_samples=NUM_SAMPLES, show_progress_bar=False,
        )
        atc_sbi, _ = check_tarp(ecp_sbi, alpha_sbi)
        ranks = tarp_ranks(theta, samples, references)
        alpha = alpha_sbi.double().numpy()
        ecp_ours = tarp_ecp(ranks, NUM_SAMPLES, alpha)
        # sbi bins in float32: a coverage value exactly on a grid point may land on either side.
        on_grid_point = np.mean(np.abs(ranks[None, :] / NUM_SAMPLES - alpha[:, None]) < 1e-6, axis=1)
        assert np.all(np.abs(ecp_ours - ecp_sbi.double().numpy()) <= on_grid_point + 1.01 / NUM_SIMULATIONS)
        ours = tarp(theta, samples, references, num_bootstrap=50)
        assert ours["atc"] == pytest.approx(atc_sbi, abs=0.01), width


@pytest.mark.parametrize(
    ("width", "verdict"), [(1.0, "calibrated"), (0.5, "overconfident"), (2.0, "conservative")]
)
def test_verdicts_flag_width(model, width, verdict):
    """The exact posterior passes; half width is overconfident and double width conservative, by both tests."""
    theta, _, references, posterior = model
    samples, log_density_samples, log_density_true = posterior(width)
    coverage = coverage_verdict(hpd_credibility(log_density_true, log_density_samples))
    assert coverage["verdict"] == verdict
    assert tarp(theta, samples, references, num_bootstrap=50)["verdict"] == verdict
    if width == 1.0:
        assert coverage["max_deviation"] < 0.06
    else:  # HPD coverage of N(0, k^2 I/2) regions for N(0, I/2) truths, at level 1/2, in 3-d: far from 1/2
        middle = coverage["levels"].index(0.5)
        assert (coverage["coverage"][middle] < 0.15) if width < 1 else (coverage["coverage"][middle] > 0.95)


def test_hpd_coverage_matches_chi_square_for_known_width(model):
    """Coverage of width-k HPD regions is P(chi2_3 <= k^2 chi2_3.ppf(level)); within 0.05 of it."""
    from scipy import stats

    theta, _, _, posterior = model
    for width in (0.7, 1.3):
        _, log_density_samples, log_density_true = posterior(width)
        result = coverage_verdict(hpd_credibility(log_density_true, log_density_samples))
        levels = np.asarray(result["levels"])
        exact = stats.chi2.cdf(width**2 * stats.chi2.ppf(levels, DIM), DIM)
        np.testing.assert_allclose(result["coverage"], exact, atol=0.05)


def test_coverage_band_holds_calibrated_draws_jointly():
    """Uniform credibilities leave the Bonferroni band (any level) in about 5% of 400 repetitions or fewer."""
    rng = np.random.default_rng(0)
    outside = sum(coverage_verdict(rng.uniform(size=300))["verdict"] != "calibrated" for _ in range(400))
    assert outside / 400 <= 0.06
    low, high = coverage_band(300, np.array([0.1, 0.9]), 0.95)
    assert np.all(low < [0.1, 0.9]) and np.all(high > [0.1, 0.9])


def test_tarp_is_calibrated_under_the_null_in_most_repetitions():
    """The TARP verdict says calibrated for exact posteriors in >= 90% of 40 independent data sets."""
    rng = np.random.default_rng(1)
    calibrated = 0
    for _ in range(40):
        theta = rng.normal(size=(200, 2))
        x = theta + rng.normal(size=(200, 2))
        samples = x[:, None] / 2 + rng.normal(size=(200, 200, 2)) / np.sqrt(2)
        calibrated += tarp(theta, samples, tarp_uniform_references(theta, rng), num_bootstrap=10)["verdict"] == "calibrated"
    assert calibrated >= 36


def test_calibrate_runs_every_check_from_one_sampling_pass(model):
    """calibrate() with the exact posterior as sampler: every check passes, arrays line up, steps are timed."""
    theta, x, references, _ = model
    calls = []

    def sample(x_batch, num_samples):
        calls.append(len(x_batch))
        generator = torch.Generator().manual_seed(7)
        return x_batch[:, None, :] / 2 + torch.randn(len(x_batch), num_samples, DIM, generator=generator, dtype=x_batch.dtype) / 2**0.5

    def log_density(theta_batch, x_batch):
        return torch.as_tensor(_log_density(theta_batch.numpy(), x_batch.numpy(), 1.0))

    result = calibrate(torch.as_tensor(theta), torch.as_tensor(x), sample, log_density, 300, references)
    assert calls == [NUM_SIMULATIONS]  # one batched pass
    assert result.parameter_ranks.shape == (NUM_SIMULATIONS, DIM) and result.log_density_ranks.shape == (NUM_SIMULATIONS,)
    np.testing.assert_allclose(result.hpd_credibility, 1 - result.log_density_ranks / 300, atol=1e-12)
    assert result.coverage["verdict"] == result.tarp["verdict"] == "calibrated"
    assert result.sbc["parameters"]["min_ks_pvalue"] > 0.01 and result.sbc["log_density"]["min_ks_pvalue"] > 0.01
    assert set(result.seconds) == {"sampling", "log_density", "sbc", "coverage", "tarp"}


def test_posterior_predictive_check_flags_an_outlying_observation():
    """A typical observation gets p-values near uniform (5% +- 3% below 0.05 over 300 trials); one 5 sd off gets p < 0.01."""
    rng = np.random.default_rng(3)
    small = 0
    for _ in range(300):
        predictive = rng.normal(size=(200, 4))
        small += posterior_predictive_check(rng.normal(size=4), predictive)["distance_pvalue"] < 0.05
    assert 0.02 <= small / 300 <= 0.08
    outlier = posterior_predictive_check(np.array([0.0, 5.0, 0.0, 0.0]), rng.normal(size=(200, 4)))
    assert outlier["distance_pvalue"] < 0.01
    assert np.argmin(outlier["feature_pvalues"]) == 1 and outlier["min_feature_pvalue"] < 0.01


def test_posterior_predictive_check_drops_invalid_simulations():
    predictive = np.random.default_rng(0).normal(size=(50, 2, 3))
    predictive[:5, 0, 1] = np.nan
    check = posterior_predictive_check(np.zeros((2, 3)), predictive)
    assert check["num_simulations"] == 45 and check["num_invalid"] == 5
    assert len(check["feature_pvalues"]) == 6 and len(check["distances_predictive"]) == 45


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: hpd_credibility(np.zeros(3), np.zeros((2, 5))), r"expected shape \[N, S\]"),
        (lambda: hpd_credibility(np.array([np.nan]), np.zeros((1, 5))), "NaN"),
        (lambda: coverage_verdict(np.array([0.5]), confidence=1.5), "confidence"),
        (lambda: tarp_ranks(np.zeros((2, 2)), np.zeros((2, 4, 3)), np.zeros((2, 2))), "posterior_samples"),
        (lambda: tarp_ranks(np.zeros((2, 2)), np.zeros((2, 4, 2)), np.zeros((3, 2))), "references"),
        (lambda: tarp(np.zeros((20, 2)), np.zeros((20, 4, 2)), np.zeros((20, 2)), num_bootstrap=1), "num_bootstrap"),
        (lambda: posterior_predictive_check(np.zeros(3), np.zeros((10, 4))), "observation"),
        (lambda: posterior_predictive_check(np.zeros(2), np.full((10, 2), np.inf)), "at least 2 valid"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
