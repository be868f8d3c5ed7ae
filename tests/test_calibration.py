"""Calibration diagnostics on a conjugate Gaussian model, against the exact posterior and sbi 0.27.

Model: theta ~ N(0, I_3), x | theta ~ N(theta, I_3), so p(theta | x) = N(x / 2, I / 2).
Posteriors "of width k" are N(x / 2, k^2 I / 2): k = 1 is exact, k = 0.5
overconfident, k = 2 conservative. The same samples go to our code and sbi's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sbi.diagnostics.sbc import _run_sbc, check_sbc
from sbi.diagnostics.tarp import _run_tarp, check_tarp
from sbi.utils.metrics import c2st as sbi_c2st

from sbi_core.diagnostics import (
    c2st,
    coverage_band,
    coverage_verdict,
    hpd_credibility,
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
    """Parameter ranks and log-density ranks are sbi's `_run_sbc` ranks exactly (run_sbc after sampling)."""
    theta, x, _, posterior = model
    samples, log_density_samples, log_density_true = posterior(1.0)
    ours = sbc_ranks(theta, samples)
    ours_density = sbc_ranks(log_density_true[:, None], log_density_samples[..., None])[:, 0]

    theta_t, x_t = torch.as_tensor(theta), torch.as_tensor(x)
    samples_t = torch.as_tensor(samples).transpose(0, 1)  # sbi: [S, N, d]
    sbi_ranks = _run_sbc(theta_t, x_t, samples_t, "marginals", show_progress_bar=False)
    sbi_density = _run_sbc(
        theta_t, x_t, samples_t,
        lambda t, x_i: torch.as_tensor(_log_density(t.numpy(), x_i.numpy(), 1.0)),
        show_progress_bar=False,
    )
    np.testing.assert_array_equal(ours, sbi_ranks.numpy().astype(int))
    np.testing.assert_array_equal(ours_density, sbi_density[:, 0].numpy().astype(int))


def test_sbc_ks_statistics_agree_with_check_sbc(model):
    """Our KS test jitters the discrete ranks, sbi's compares r / S with U(0, 1): p-values within 0.05."""
    theta, x, _, posterior = model
    for width in (1.0, 0.8):
        samples, _, _ = posterior(width)
        ranks = sbc_ranks(theta, samples)
        ours = sbc_uniformity(ranks, NUM_SAMPLES)["ks_pvalues"]
        checks = check_sbc(
            torch.as_tensor(ranks, dtype=torch.float32),
            torch.as_tensor(np.random.default_rng(0).normal(size=(NUM_SIMULATIONS, DIM)), dtype=torch.float32),
            torch.as_tensor(samples[:, 0], dtype=torch.float32),
            num_posterior_samples=NUM_SAMPLES,
        )
        np.testing.assert_allclose(ours, checks["ks_pvals"].numpy(), atol=0.05)


def test_tarp_ecp_and_atc_agree_with_sbi(model):
    """On sbi's alpha grid our ECP is sbi's up to ties on grid points; ATC on our [0, 1] grid within 0.01."""
    theta, _, references, posterior = model
    for width in (1.0, 0.5, 2.0):
        samples, _, _ = posterior(width)
        ecp_sbi, alpha_sbi = _run_tarp(
            torch.as_tensor(samples).transpose(0, 1), torch.as_tensor(theta), torch.as_tensor(references),
            z_score_theta=True,
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


def test_c2st_agrees_with_sbi_mlp():
    """Our benchmark-style C2ST against sbi's with the same MLP: within 0.03 for equal and shifted sets."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(1000, 2))
    for shift, expected in ((0.0, 0.5), (1.0, 0.69)):
        b = rng.normal(size=(1000, 2)) + np.array([shift, 0.0])
        ours = c2st(a, b, seed=1)
        theirs = float(sbi_c2st(torch.as_tensor(a), torch.as_tensor(b), seed=1, classifier="mlp"))
        assert ours == pytest.approx(theirs, abs=0.03)
        assert ours == pytest.approx(expected, abs=0.04)  # 0.69 = Phi(1/2), the Bayes accuracy at shift 1


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


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: hpd_credibility(np.zeros(3), np.zeros((2, 5))), r"expected shape \[N, S\]"),
        (lambda: hpd_credibility(np.array([np.nan]), np.zeros((1, 5))), "NaN"),
        (lambda: coverage_verdict(np.array([0.5]), confidence=1.5), "confidence"),
        (lambda: tarp_ranks(np.zeros((2, 2)), np.zeros((2, 4, 3)), np.zeros((2, 2))), "posterior_samples"),
        (lambda: tarp_ranks(np.zeros((2, 2)), np.zeros((2, 4, 2)), np.zeros((3, 2))), "references"),
        (lambda: tarp(np.zeros((20, 2)), np.zeros((20, 4, 2)), np.zeros((20, 2)), num_bootstrap=1), "num_bootstrap"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
