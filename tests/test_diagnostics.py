"""Tests of sbi_core.diagnostics: SBC ranks and uniformity tests, C2ST."""

import json

import numpy as np
import pytest
import torch

from sbi_core.diagnostics import c2st, sbc_default_num_bins, sbc_rank_histogram, sbc_ranks, sbc_uniformity

NUM_SIMULATIONS = 1000
NUM_SAMPLES = 100


def conjugate_gaussian_sbc(width_factor: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """theta ~ N(0, 1), x ~ N(theta, 1): the posterior is N(x / 2, 1 / 2), in 2 independent dimensions."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(NUM_SIMULATIONS, 2))
    x = theta + rng.normal(size=theta.shape)
    noise = rng.normal(size=(NUM_SIMULATIONS, NUM_SAMPLES, 2))
    samples = x[:, None, :] / 2 + width_factor * np.sqrt(0.5) * noise
    return theta, samples


# SBC ranks


def test_sbc_ranks_by_hand():
    theta = np.array([[0.5, 0.0], [2.0, -1.0]])
    samples = np.array(
        [
            [[0.1, 0.0], [0.7, 1.0], [0.3, -1.0]],  # ties with the truth do not count as below
            [[1.0, -2.0], [3.0, -3.0], [2.5, -0.5]],
        ]
    )
    ranks = sbc_ranks(theta, samples)
    np.testing.assert_array_equal(ranks, [[2, 1], [1, 2]])
    assert ranks.dtype == np.int64


def test_sbc_ranks_shapes_and_torch():
    theta = torch.randn(7, 3)
    samples = torch.randn(7, 50, 3)
    ranks = sbc_ranks(theta, samples)
    assert ranks.shape == (7, 3)
    assert ranks.min() >= 0 and ranks.max() <= 50
    np.testing.assert_array_equal(ranks, sbc_ranks(theta.numpy(), samples.numpy()))
    # Loop reference for the vectorized count.
    expected = [[int((samples[n, :, j] < theta[n, j]).sum()) for j in range(3)] for n in range(7)]
    np.testing.assert_array_equal(ranks, expected)


@pytest.mark.parametrize(
    "theta_shape, samples_shape, name",
    [((5,), (5, 10, 1), "theta_true"), ((5, 2), (5, 10), "posterior_samples"), ((5, 2), (4, 10, 2), "posterior_samples")],
)
def test_sbc_ranks_bad_shapes(theta_shape, samples_shape, name):
    with pytest.raises(ValueError, match=name):
        sbc_ranks(np.zeros(theta_shape), np.zeros(samples_shape))


# SBC uniformity


def test_sbc_uniformity_exact_posterior_passes():
    theta, samples = conjugate_gaussian_sbc(width_factor=1.0)
    result = sbc_uniformity(sbc_ranks(theta, samples), NUM_SAMPLES)
    assert result["min_ks_pvalue"] > 0.01
    assert result["min_chi2_pvalue"] > 0.01
    assert result["num_bins"] == 20
    assert len(result["ks_pvalues"]) == len(result["chi2_pvalues"]) == 2
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize("width_factor", [0.5, 2.0])
def test_sbc_uniformity_wrong_width_fails(width_factor):
    theta, samples = conjugate_gaussian_sbc(width_factor=width_factor)
    result = sbc_uniformity(sbc_ranks(theta, samples), NUM_SAMPLES)
    assert result["min_ks_pvalue"] < 1e-3
    assert result["min_chi2_pvalue"] < 1e-3
    assert max(result["ks_pvalues"]) < 1e-3 and max(result["chi2_pvalues"]) < 1e-3


def test_sbc_uniformity_biased_posterior_fails():
    theta, samples = conjugate_gaussian_sbc(width_factor=1.0)
    samples[..., 1] += 0.3  # only the second parameter is biased
    result = sbc_uniformity(sbc_ranks(theta, samples), NUM_SAMPLES)
    assert result["ks_pvalues"][0] > 0.01 and result["chi2_pvalues"][0] > 0.01
    assert result["ks_pvalues"][1] < 1e-3 and result["chi2_pvalues"][1] < 1e-3
    assert result["min_ks_pvalue"] == result["ks_pvalues"][1]


def test_sbc_uniformity_perfectly_uniform_ranks():
    # 101 rank values do not split evenly into 20 bins; the expected counts must follow the bin widths.
    ranks = np.tile(np.arange(NUM_SAMPLES + 1), 10)[:, None]
    result = sbc_uniformity(ranks, NUM_SAMPLES)
    assert result["num_bins"] == 20
    assert result["chi2_statistics"] == [0.0]
    assert result["chi2_pvalues"] == [pytest.approx(1.0)]
    assert result["ks_pvalues"][0] > 0.5


def test_sbc_uniformity_is_reproducible():
    ranks = np.random.default_rng(1).integers(0, 11, size=(200, 3))
    assert sbc_uniformity(ranks, 10) == sbc_uniformity(ranks.copy(), 10)


def test_sbc_uniformity_bad_input():
    with pytest.raises(ValueError, match="ranks"):
        sbc_uniformity(np.array([[0], [11]]), num_samples=10)
    with pytest.raises(ValueError, match="ranks"):
        sbc_uniformity(np.zeros(10, dtype=int), num_samples=10)
    with pytest.raises(ValueError, match="num_bins"):
        sbc_uniformity(np.zeros((10, 1), dtype=int), num_samples=10, num_bins=12)


def test_sbc_rank_histogram_bins():
    ranks = np.array([[0], [1], [2], [3], [4]])
    counts, edges, probabilities = sbc_rank_histogram(ranks, num_samples=4, num_bins=2)
    np.testing.assert_array_equal(edges, [0, 3, 5])  # ranks {0, 1, 2} and {3, 4}
    np.testing.assert_array_equal(counts[:, 0], [3, 2])
    np.testing.assert_allclose(probabilities, [0.6, 0.4])
    assert sbc_default_num_bins(1000, 100) == 20
    assert sbc_default_num_bins(40, 100) == 8
    assert sbc_default_num_bins(1000, 5) == 6


# C2ST


def gaussian_pair(shift: float, seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2))
    b = rng.normal(size=(n, 2))
    b[:, 0] += shift
    return a, b


def test_c2st_identical_distributions():
    a, b = gaussian_pair(shift=0.0)
    assert abs(c2st(a, b) - 0.5) < 0.05


def test_c2st_shifted_distributions():
    a, b = gaussian_pair(shift=3.0)
    accuracy = c2st(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(accuracy, float)
    # The Bayes-optimal accuracy for a 3-std shift is Phi(1.5) = 0.933.
    assert 0.9 < accuracy < 0.96


def test_c2st_matches_sbi():
    from sbi.utils.metrics import c2st as sbi_c2st

    a, b = gaussian_pair(shift=1.0, seed=1)
    # sbi's own default classifier is a random forest; ask it for the benchmark MLP.
    mlp = {"activation": "relu", "hidden_layer_sizes": (20, 20), "max_iter": 1000, "solver": "adam"}
    expected = sbi_c2st(torch.from_numpy(a), torch.from_numpy(b), seed=0, classifier="mlp", classifier_kwargs=mlp)
    assert c2st(a, b, seed=0) == pytest.approx(float(expected), abs=0.02)


def test_c2st_subsamples_and_is_seeded():
    a, b = gaussian_pair(shift=3.0, n=3000)
    first = c2st(a, b, seed=3, max_samples=300)
    assert first == c2st(a, b, seed=3, max_samples=300)
    assert first > 0.85


def test_c2st_bad_input():
    with pytest.raises(ValueError, match="samples_b"):
        c2st(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="samples_a"):
        c2st(np.full((10, 2), np.nan), np.zeros((10, 2)))
