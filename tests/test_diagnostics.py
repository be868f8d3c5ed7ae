"""Tests of sbi_core.diagnostics: SBC ranks and uniformity tests, C2ST."""

import json
from typing import Optional

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from sbi_core.diagnostics import (C2STResult, c2st, c2st_many, sbc_default_num_bins, sbc_rank_histogram, sbc_ranks,
                                  sbc_uniformity)
from sbi_core.diagnostics.mlp import BatchedMLP

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
    assert abs(c2st(a, b).accuracy - 0.5) < 0.05


def test_c2st_shifted_distributions():
    a, b = gaussian_pair(shift=3.0)
    result = c2st(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(result, C2STResult) and isinstance(result.accuracy, float)
    accuracy = result.accuracy
    # The Bayes-optimal accuracy for a 3-std shift is Phi(1.5) = 0.933.
    assert 0.9 < accuracy < 0.96


def test_c2st_matches_sbi():
    from sbi.utils.metrics import c2st as sbi_c2st

    a, b = gaussian_pair(shift=1.0, seed=1)
    # sbi's own default classifier is a random forest, and its "mlp" defaults are not sbibm's
    # (max_iter 1000, early stopping on a 10% validation split): ask it for the benchmark MLP.
    mlp = {"activation": "relu", "hidden_layer_sizes": (20, 20), "max_iter": 10000, "solver": "adam"}
    expected = float(sbi_c2st(torch.from_numpy(a), torch.from_numpy(b), seed=0, classifier="mlp", classifier_kwargs=mlp))
    result = c2st(a, b, seed=0)
    # Two estimates of one accuracy on the same samples, each with its binomial standard error.
    assert abs(result.accuracy - expected) <= np.sqrt(2) * result.stderr


def test_c2st_many_trains_every_test_at_once():
    rng = np.random.default_rng(5)
    shifts = np.array([0.0, 1.0, 4.0])
    a = rng.normal(size=(3, 1500, 2))
    b = rng.normal(size=(3, 1500, 2)) + shifts[:, None, None] * np.array([1.0, 0.0])
    results = c2st_many(torch.from_numpy(a), b, seed=2)
    # The Bayes-optimal accuracy of a shift s in one coordinate is Phi(s / 2): 0.5, 0.691, 0.977.
    for result, optimum in zip(results, (0.5, 0.691, 0.977)):
        assert abs(result.accuracy - optimum) < 3 * result.stderr + 0.01
        assert result.num_samples_a == result.num_samples_b == 1500
    assert results[2].roc_auc > 0.99 and abs(results[0].roc_auc - 0.5) < 0.04
    with pytest.raises(ValueError, match="samples_a, samples_b"):
        c2st_many(a, b[:2])
    b[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="samples_b: contains NaN"):
        c2st_many(a, b)


def test_batched_mlp_gradients_are_autograds():
    network = BatchedMLP(3, 4, 40, torch.Generator().manual_seed(0))
    x, y = torch.randn(3, 50, 4), (torch.rand(3, 50) > 0.5).float()
    weight = torch.ones(3, 50)
    weight[1, -7:] = 0  # a shorter batch for one model
    loss, gradients = network.loss_and_gradients(x, y, weight)
    network.weights = [w.clone().requires_grad_() for w in network.weights]
    network.biases = [b.clone().requires_grad_() for b in network.biases]
    again, _ = network.loss_and_gradients(x, y, weight)
    expected = torch.autograd.grad(again.sum(), network.parameters)
    torch.testing.assert_close(loss, again.detach())
    for gradient, reference in zip(gradients, expected):
        torch.testing.assert_close(gradient, reference)


def test_c2st_subsamples_and_is_seeded():
    a, b = gaussian_pair(shift=3.0, n=3000)
    first = c2st(a, b, seed=3, max_samples=300)
    assert first == c2st(a, b, seed=3, max_samples=300)
    assert first.accuracy > 0.85
    assert first.num_samples_a == first.num_samples_b == 300


def test_c2st_bad_input():
    with pytest.raises(ValueError, match="samples_b"):
        c2st(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="samples_a"):
        c2st(np.full((10, 2), np.nan), np.zeros((10, 2)))


# sbibm's C2ST, the procedure behind the published numbers (Lueckmann et al., 2021; there called
# with X the reference samples, 10000 of each set, z_score=True). Copied verbatim from
# https://github.com/sbi-benchmark/sbibm/blob/f0bc44039e6b7e095c18d4e9e64819d75be76587/sbibm/metrics/c2st.py
# but for the function's name (c2st -> sbibm_c2st).
# Copyright 2020 Jan-Matthis Lueckmann, Jan Boelts, David S. Greenberg, Pedro J. Gonçalves, Jakob H. Macke;
# MIT licence: Permission is hereby granted, free of charge, to any person obtaining a copy of this
# software and associated documentation files (the "Software"), to deal in the Software without
# restriction, including without limitation the rights to use, copy, modify, merge, publish,
# distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
# Software is furnished to do so, subject to the following conditions: The above copyright notice and
# this permission notice shall be included in all copies or substantial portions of the Software.
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
# LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN
# NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY,
# WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
# SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
def sbibm_c2st(
    X: torch.Tensor,
    Y: torch.Tensor,
    seed: int = 1,
    n_folds: int = 5,
    scoring: str = "accuracy",
    z_score: bool = True,
    noise_scale: Optional[float] = None,
) -> torch.Tensor:
    """Classifier-based 2-sample test returning accuracy

    Trains classifiers with N-fold cross-validation [1]. Scikit learn MLPClassifier are
    used, with 2 hidden layers of 10x dim each, where dim is the dimensionality of the
    samples X and Y.

    Args:
        X: Sample 1
        Y: Sample 2
        seed: Seed for sklearn
        n_folds: Number of folds
        z_score: Z-scoring using X
        noise_scale: If passed, will add Gaussian noise with std noise_scale to samples

    References:
        [1]: https://scikit-learn.org/stable/modules/cross_validation.html
    """
    if z_score:
        X_mean = torch.mean(X, dim=0)
        X_std = torch.std(X, dim=0)
        X = (X - X_mean) / X_std
        Y = (Y - X_mean) / X_std

    if noise_scale is not None:
        X += noise_scale * torch.randn(X.shape)
        Y += noise_scale * torch.randn(Y.shape)

    X = X.cpu().numpy()
    Y = Y.cpu().numpy()

    ndim = X.shape[1]

    clf = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * ndim, 10 * ndim),
        max_iter=10000,
        solver="adam",
        random_state=seed,
    )

    data = np.concatenate((X, Y))
    target = np.concatenate(
        (
            np.zeros((X.shape[0],)),
            np.ones((Y.shape[0],)),
        )
    )

    shuffle = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, data, target, cv=shuffle, scoring=scoring)

    scores = np.asarray(np.mean(scores)).astype(np.float32)
    return torch.from_numpy(np.atleast_1d(scores))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_c2st_agrees_with_the_sbibm_procedure(dtype):
    # A 1-std shift: the Bayes-optimal accuracy is Phi(0.5) = 0.69, away from both 0.5 and 1.
    reference, estimate = (torch.from_numpy(s).to(dtype) for s in gaussian_pair(shift=1.0, seed=2, n=3000))
    result = c2st(reference, estimate)
    with threadpool_limits(limits=1, user_api="blas"):
        expected = float(sbibm_c2st(reference, estimate))
    assert 0.6 < expected < 0.75
    assert result.num_samples_a == result.num_samples_b == 3000
    assert result.stderr == pytest.approx(np.sqrt(result.accuracy * (1 - result.accuracy) / 6000))
    # The same classifier, optimiser and stopping rule in torch, with other random streams: the same
    # accuracy within the two estimates' standard errors, not to the last digit.
    assert abs(result.accuracy - expected) <= np.sqrt(2) * result.stderr


def test_c2st_uses_every_sample_unless_capped():
    # The old default silently subsampled each set to 2000, while its callers reported the count they passed.
    reference, estimate = gaussian_pair(shift=1.0, seed=2, n=1000)
    capped = c2st(reference, estimate, max_samples=600)
    assert capped.num_samples_a == capped.num_samples_b == 600
    assert capped.stderr == pytest.approx(np.sqrt(capped.accuracy * (1 - capped.accuracy) / 1200))
    full = c2st(reference, estimate)
    assert full.num_samples_a == full.num_samples_b == 1000
    assert full.accuracy != capped.accuracy
    unequal = c2st(reference[:600], estimate[:500])
    assert (unequal.num_samples_a, unequal.num_samples_b) == (600, 500)
