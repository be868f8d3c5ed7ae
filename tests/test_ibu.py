"""Iterative Bayesian unfolding: equal to PyUnfold's ``iterative_unfold``, the response
builder, bad inputs, and closure on toys with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from sbi_core.unfolding.ibu import IBUResult, iterative_unfold, response_from_simulations

CAUSE_EDGES = np.linspace(0.0, 6.0, 11)
OBSERVABLE_EDGES = np.linspace(0.0, 6.0, 13)
RESULT_KEYS = ("unfolded", "stat_err", "sys_err", "unfolding_matrix", "ts_iter")


@pytest.fixture(scope="module")
def pyunfold():
    return pytest.importorskip("pyunfold")


def _falling_spectrum(rng: np.random.Generator, n: int, scale: float = 1.5) -> np.ndarray:
    """An exponential spectrum truncated to the cause range (inverse CDF)."""
    top = 1 - np.exp(-CAUSE_EDGES[-1] / scale)
    return -scale * np.log1p(-rng.random(n) * top)


def _smear(rng: np.random.Generator, cause: np.ndarray) -> np.ndarray:
    """A Gaussian resolution that widens with the cause."""
    return cause + rng.normal(0.0, 0.1 + 0.1 * cause)


def _detection_probability(cause: np.ndarray) -> np.ndarray:
    return 0.6 + 0.3 * np.exp(-cause)


@pytest.fixture(scope="module")
def smearing_problem():
    """The response from 100k simulated events, and 20k observed events to unfold."""
    rng = np.random.default_rng(11)
    cause = _falling_spectrum(rng, 100_000)
    response = response_from_simulations(
        cause, _smear(rng, cause), CAUSE_EDGES, OBSERVABLE_EDGES, _detection_probability(cause)
    )
    true_cause = _falling_spectrum(rng, 20_000)
    detected = rng.random(len(true_cause)) < _detection_probability(true_cause)
    data = np.histogram(_smear(rng, true_cause)[detected], OBSERVABLE_EDGES)[0].astype(float)
    return response, data, np.sqrt(data)


def _inputs(problem) -> dict:
    response, data, data_err = problem
    return dict(
        data=data,
        data_err=data_err,
        response=response.matrix,
        response_err=response.matrix_err,
        efficiencies=response.efficiencies,
        efficiencies_err=response.efficiencies_err,
    )


def _assert_same(ours: dict, theirs, context: str) -> None:
    for key in RESULT_KEYS:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, err_msg=f"{context}: {key}")
    assert ours["num_iterations"] == theirs["num_iterations"], context


def _as_dict(result: IBUResult) -> dict:
    return {key: getattr(result, key) for key in (*RESULT_KEYS, "num_iterations")}


# --- equal to PyUnfold -----------------------------------------------------------------


@pytest.mark.parametrize("cov_type", ["multinomial", "poisson"])
@pytest.mark.parametrize("ts", ["ks", "chi2", "bf", "rmd"])
def test_equals_pyunfold(pyunfold, smearing_problem, cov_type, ts):
    inputs = _inputs(smearing_problem)
    # A tight threshold, so that Adye's propagation runs through several iterations.
    stopping = {"ks": 1e-3, "chi2": 1e-5, "bf": 0.01, "rmd": 1e-3}[ts]
    ours = iterative_unfold(**inputs, ts=ts, ts_stopping=stopping, cov_type=cov_type)
    theirs = pyunfold.iterative_unfold(**inputs, ts=ts, ts_stopping=stopping, cov_type=cov_type)
    _assert_same(_as_dict(ours), theirs, f"{ts}/{cov_type}")
    assert ours.iterations is None and ours.ts_stopping == stopping
    if ts != "bf":
        assert ours.num_iterations > 2


def test_equals_pyunfold_with_defaults_and_a_prior(pyunfold, smearing_problem):
    inputs = _inputs(smearing_problem)
    _assert_same(
        _as_dict(iterative_unfold(**inputs)), pyunfold.iterative_unfold(**inputs), "defaults"
    )
    prior = np.linspace(3.0, 1.0, len(CAUSE_EDGES) - 1) ** 2
    prior /= prior.sum()
    ours = iterative_unfold(**inputs, prior=prior, ts="chi2", ts_stopping=1e-5)
    theirs = pyunfold.iterative_unfold(**inputs, prior=prior, ts="chi2", ts_stopping=1e-5)
    _assert_same(_as_dict(ours), theirs, "user prior")


@pytest.mark.parametrize("cov_type", ["multinomial", "poisson"])
def test_every_iteration_equals_pyunfold(pyunfold, smearing_problem, cov_type):
    inputs = _inputs(smearing_problem)
    ours = iterative_unfold(**inputs, ts_stopping=1e-4, cov_type=cov_type, return_iterations=True)
    theirs = pyunfold.iterative_unfold(
        **inputs, ts_stopping=1e-4, cov_type=cov_type, return_iterations=True
    )
    assert len(ours.iterations) == len(theirs) == ours.num_iterations > 3
    for (_, row), step in zip(theirs.iterrows(), ours.iterations, strict=True):
        _assert_same(step, row, f"iteration {step['num_iterations']}")
    _assert_same(_as_dict(ours), theirs.iloc[-1], "result")
    # max_iter stops it early, as PyUnfold does.
    capped = iterative_unfold(**inputs, ts_stopping=1e-4, max_iter=2, return_iterations=True)
    assert capped.num_iterations == len(capped.iterations) == 2
    np.testing.assert_allclose(capped.unfolded, ours.iterations[1]["unfolded"], rtol=1e-12)


def test_pyunfold_docstring_example():
    result = iterative_unfold(
        [100, 150], [10, 12.2], [[0.9, 0.1], [0.1, 0.9]], [[0.01] * 2] * 2, [1, 1], [0.01, 0.01]
    )
    # The numbers in PyUnfold's ``iterative_unfold`` docstring.
    np.testing.assert_allclose(result.unfolded, [94.32086967, 155.67913033], rtol=1e-8)
    np.testing.assert_allclose(result.stat_err, [11.16853268, 13.65488168], rtol=1e-8)
    np.testing.assert_allclose(result.sys_err, [0.65570621, 0.65570621], rtol=1e-7)
    assert result.num_iterations == 4


# --- the response builder --------------------------------------------------------------


def test_response_by_hand():
    # Cause bins [0, 1), [1, 2]; 2.0 is in the last (closed) bin; 3.0 is observed outside.
    response = response_from_simulations(
        cause=[0.5, 0.5, 1.5, 2.0, 0.2],
        observable=[0.5, 1.5, 1.5, 2.0, 3.0],
        cause_edges=[0.0, 1.0, 2.0],
        observable_edges=[0.0, 1.0, 2.0],
    )
    np.testing.assert_allclose(response.matrix, [[1 / 3, 0.0], [1 / 3, 1.0]])
    np.testing.assert_allclose(response.matrix_err, [[1 / 3, 0.0], [1 / 3, np.sqrt(2) / 2]])
    np.testing.assert_allclose(response.efficiencies, [2 / 3, 1.0])
    # epsilon / sqrt(N): the multinomial covariance reads (epsilon / error)^2 as the N simulated per cause.
    np.testing.assert_allclose(response.efficiencies_err, [2 / 3 / np.sqrt(3), 1 / np.sqrt(2)])
    assert response.cause_shape == (2,) and len(response.cause_edges) == 1


def test_efficiencies_are_the_detection_fraction():
    rng = np.random.default_rng(5)
    n = 40_000
    cause = rng.uniform(0.0, 5.0, n)
    known = np.array([0.9, 0.75, 0.5, 0.3, 0.1])  # detection probability per cause bin
    probability = known[np.minimum(cause.astype(int), 4)]
    # Undetected events are observed outside the observable range.
    observable = np.where(rng.random(n) < probability, _smear(rng, cause), -10.0)
    edges = np.arange(6.0)
    response = response_from_simulations(cause, observable, edges, np.linspace(-2.0, 12.0, 15))
    generated, _ = np.histogram(cause, edges)
    pull = (response.efficiencies - known) / np.sqrt(known * (1 - known) / generated)  # binomial
    assert np.all(np.abs(pull) < 4), pull
    np.testing.assert_allclose(response.efficiencies_err, response.efficiencies / np.sqrt(generated))
    np.testing.assert_allclose(response.efficiencies, response.matrix.sum(axis=0))
    # The same detection as weights: the efficiency is the weights' mean, exactly.
    weighted = response_from_simulations(
        cause, _smear(rng, cause), edges, np.linspace(-2.0, 12.0, 15), weights=probability
    )
    np.testing.assert_allclose(weighted.efficiencies, known, rtol=1e-12)


def test_two_dimensional_causes_flatten_row_major():
    rng = np.random.default_rng(6)
    n = 20_000
    cause = np.column_stack([rng.uniform(0, 3, n), rng.uniform(-1, 1, n)])
    edges = (np.linspace(0, 3, 4), np.linspace(-1, 1, 5))
    table = np.arange(1.0, 13.0).reshape(3, 4) / 13  # detection probability per 2-D bin
    index = np.minimum((cause[:, 0]).astype(int), 2), np.minimum(
        ((cause[:, 1] + 1) * 2).astype(int), 3
    )
    observable = cause.sum(axis=1) + rng.normal(0, 0.2, n)
    response = response_from_simulations(
        cause, observable, edges, np.linspace(-3, 6, 10), weights=table[index]
    )
    assert response.matrix.shape == response.matrix_err.shape == (9, 12)
    assert response.cause_shape == (3, 4) and len(response.cause_edges) == 2
    np.testing.assert_allclose(response.efficiencies.reshape(response.cause_shape), table)
    np.testing.assert_allclose(response.matrix.sum(axis=0), response.efficiencies)


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"cause_edges": np.linspace(0.0, 8.0, 9)}, "cause_edges.*empty"),
        ({"cause_edges": np.linspace(6.0, 0.0, 7)}, "cause_edges"),
        ({"observable_edges": [0.0, 2.0, 1.0]}, "observable_edges"),
        ({"observable": np.zeros(99)}, "observable"),
        ({"weights": np.full(100, 1.5)}, "weights"),
        ({"weights": np.ones(7)}, "weights"),
        ({"cause": np.r_[np.nan, np.ones(99)]}, "cause"),
        ({"cause_edges": (CAUSE_EDGES, CAUSE_EDGES)}, "cause_edges"),
    ],
)
def test_response_refuses_bad_inputs(change, argument):
    rng = np.random.default_rng(7)
    cause = rng.uniform(0.0, 6.0, 100)
    inputs = dict(
        cause=cause, observable=cause, cause_edges=np.linspace(0, 6, 4), observable_edges=[0, 6]
    )
    with pytest.raises(ValueError, match=argument):
        response_from_simulations(**{**inputs, **change})


def test_two_dimensional_cause_needs_two_edge_arrays():
    with pytest.raises(ValueError, match="cause_edges"):
        response_from_simulations(np.ones((5, 2)), np.ones(5), [0.0, 2.0], [0.0, 2.0])


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"prior": [0.5, 0.6]}, "prior"),
        ({"prior": [1.0]}, "prior"),
        ({"ts": "kolmogorov"}, "ts"),
        ({"cov_type": "gaussian"}, "cov_type"),
        ({"data": [1.0, 2.0, 3.0]}, "data"),
        ({"data_err": [-1.0, 1.0]}, "data_err"),
        ({"efficiencies": [1.0]}, "efficiencies"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_unfold_refuses_bad_inputs(change, argument):
    inputs = dict(
        data=[10.0, 20.0],
        data_err=[3.0, 4.0],
        response=np.eye(2),
        response_err=np.zeros((2, 2)),
        efficiencies=[1.0, 1.0],
        efficiencies_err=[0.1, 0.1],
    )
    with pytest.raises(ValueError, match=argument):
        iterative_unfold(**{**inputs, **change})


# --- closure ---------------------------------------------------------------------------


def test_diagonal_response_returns_the_data():
    data = np.array([5.0, 40.0, 120.0, 60.0, 7.0])
    n = len(data)
    result = iterative_unfold(
        data,
        np.sqrt(data),
        np.eye(n),
        np.zeros((n, n)),
        np.ones(n),
        np.full(n, 0.01),
        return_iterations=True,
    )
    np.testing.assert_allclose(result.iterations[0]["unfolded"], data, rtol=1e-12)
    np.testing.assert_allclose(result.unfolded, data, rtol=1e-12)
    assert result.num_iterations == 2 and result.ts_iter == 0.0  # the second one confirms it
    np.testing.assert_allclose(result.stat_err, np.sqrt(data), rtol=1e-12)


def test_unfolding_recovers_the_true_causes():
    rng = np.random.default_rng(12)
    cause = _falling_spectrum(rng, 400_000)
    response = response_from_simulations(
        cause, _smear(rng, cause), CAUSE_EDGES, OBSERVABLE_EDGES, _detection_probability(cause)
    )
    true_cause = _falling_spectrum(rng, 200_000)
    detected = rng.random(len(true_cause)) < _detection_probability(true_cause)
    data = np.histogram(_smear(rng, true_cause)[detected], OBSERVABLE_EDGES)[0].astype(float)
    truth = np.histogram(true_cause, CAUSE_EDGES)[0]
    result = iterative_unfold(
        data,
        np.sqrt(data),
        response.matrix,
        response.matrix_err,
        response.efficiencies,
        response.efficiencies_err,
        ts="chi2",
        ts_stopping=1e-6,
        cov_type="poisson",
    )
    error = np.hypot(result.stat_err, result.sys_err)
    chi2_per_bin = np.mean(((result.unfolded - truth) / error) ** 2)
    assert chi2_per_bin < 3.0, (chi2_per_bin, result.unfolded, truth)
    # The folded-in inefficiency is undone: the totals agree to the errors' size.
    assert abs(result.unfolded.sum() - truth.sum()) < 3 * np.sqrt(truth.sum())
