"""Tests for sbi_core.limits: batched profiles, pyhf's asymptotic CLs formulae, upper limits against pyhf."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyhf
import pytest
import torch
from sbi.utils import BoxUniform

from sbi_core.limits import (
    cls_from_test_statistics,
    cls_upper_limit,
    histfactory_asimov_prior,
    interpolate_upper_limit,
    log_objective,
    maximise_adam,
    maximise_nelder_mead,
    profile_log_ratio,
    pyhf_fixed_params,
    pyhf_upper_limit,
    qmu_tilde,
    support_bounds,
)
from sbi_core.estimators import NLEEstimator, NPEEstimator, NREEstimator
from sbi_core.ratio import RatioEstimator, train_ratio_estimator
from sbi_core.tasks.histfactory import HistFactoryLikelihood, build_histfactory

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: small networks, one torch thread

REPO = Path(__file__).resolve().parents[1]
SIMPLE = str(REPO / "config" / "workspaces" / "simple.json")
SCAN = np.linspace(0.0, 5.0, 21)
# The exact likelihood's values are float32 sums of terms up to ~|lgamma(x + 1)|, so the
# objective is quantised at ~3e-5 (main data) to ~1e-4 (with auxiliary data).
PROFILE_ATOL = 3e-4


def _simple(data: str = "main", parameters: list[str] | None = None):
    settings = {"workspace": SIMPLE, "data": data}
    if parameters is not None:
        settings["parameters"] = parameters
    return build_histfactory(settings, "w")


@pytest.fixture(scope="module")
def pyhf_simple() -> dict:
    """pyhf's limits on simple.json's observations (the same for both data layouts)."""
    model, _ = _simple()
    return pyhf_upper_limit(model, SCAN)


@pytest.fixture(scope="module")
def trained_network():
    """A ratio estimator trained briefly on 3000 simulations of simple.json (main data)."""
    model, prior = _simple()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theta = prior.sample((3000,))
        x = model.simulate(theta)
    settings = {"max_epochs": 15, "hidden_features": 32, "batch_size": 200, "num_atoms": 10, "patience": 20}
    network, _ = train_ratio_estimator(theta, x, "nre_b", settings, seed=0, show_progress_bar=False)
    return network, model, prior


# ------------------------------------------------------------------ CLs formulae


def _pyhf_cls(q_mu: float, q_mu_asimov: float, monkeypatch: pytest.MonkeyPatch) -> tuple[float, list[float]]:
    """pyhf's own AsymptoticCalculator (qtilde) on given test statistics: its fits are replaced by them."""
    calculators = pyhf.infer.calculators

    def test_statistic(mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars=False):
        return pyhf.tensorlib.astensor(q_mu_asimov if data == "asimov" else q_mu), (None, None)

    monkeypatch.setattr(pyhf.infer.utils, "get_test_stat", lambda name: test_statistic)
    monkeypatch.setattr(calculators, "generate_asimov_data", lambda *args, **kwargs: ("asimov", None))
    calculator = calculators.AsymptoticCalculator("observed", None, [1.0], [[0.0, 10.0]], [False], "qtilde")
    statistic = calculator.teststatistic(1.0)
    sig_plus_bkg, bkg_only = calculator.distributions(1.0)
    _, _, cls = calculator.pvalues(statistic, sig_plus_bkg, bkg_only)
    _, _, expected = calculator.expected_pvalues(sig_plus_bkg, bkg_only)
    return float(cls), [float(value) for value in expected]


def test_cls_formulae_equal_pyhf_calculator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both branches of pyhf's qtilde statistic (sqrt q <= sqrt q_A and above), q = 0, large q."""
    pairs = [
        (0.0, 0.3),
        (0.2, 0.3),
        (0.3, 0.3),
        (1.0, 0.4),
        (2.0, 3.0),
        (3.94, 3.42),
        (9.0, 2.5),
        (25.0, 16.0),
    ]
    observed, expected = cls_from_test_statistics(
        torch.tensor([q for q, _ in pairs]), torch.tensor([a for _, a in pairs])
    )
    tensorlib, optimizer = pyhf.get_backend()
    pyhf.set_backend("numpy")
    try:
        for i, (q, q_asimov) in enumerate(pairs):
            pyhf_observed, pyhf_expected = _pyhf_cls(q, q_asimov, monkeypatch)
            assert observed[i].item() == pytest.approx(pyhf_observed, abs=1e-6, rel=1e-6)
            np.testing.assert_allclose(expected[i].numpy(), pyhf_expected, rtol=1e-6, atol=1e-9)
    finally:
        pyhf.set_backend(tensorlib, optimizer)
    # The expected band increases: its limits come out -2 .. +2 sigma.
    assert (expected.diff(dim=1) > 0).all()


def test_qmu_tilde_is_zero_above_mu_hat_and_clipped() -> None:
    """pyhf's _qmu_like: 0 where mu_hat > mu, else twice the log-likelihood ratio clipped at 0."""
    poi_values = torch.tensor([0.0, 0.5, 1.0, 2.0])
    log_profile = torch.tensor([-2.0, -1.0, -1.0 + 1e-7, -3.5])
    q_mu = qmu_tilde(poi_values, log_profile, -1.0, 0.5)
    assert q_mu.tolist() == [0.0, 0.0, 0.0, 5.0]
    assert qmu_tilde(poi_values, log_profile, -1.0, 0.0)[0].item() == 2.0


def test_cls_without_sensitivity_is_one_and_interpolation_is_pyhfs() -> None:
    observed, expected = cls_from_test_statistics(torch.tensor([0.5, 0.0]), torch.tensor([0.0, 0.0]))
    assert observed.tolist() == [1.0, 1.0] and (expected == 1.0).all()
    scan, cls = torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([1.0, 0.3, 0.04, 0.01])
    assert interpolate_upper_limit(scan, cls, 0.05) == pytest.approx(1 + 0.25 / 0.26)
    # Never crossing the level gives the scan's end, as pyhf's np.interp does.
    assert interpolate_upper_limit(scan, cls + 1.0, 0.05) == 3.0


# ---------------------------------------------------------------------- bounds and optimisers


def test_support_bounds_of_histfactory_and_box_priors() -> None:
    _, prior = _simple()
    low, high = support_bounds(prior, 3)
    assert low.tolist() == [0.0, 0.0, 0.0] and high.tolist() == [10.0, math.inf, math.inf]
    low, high = support_bounds(BoxUniform(-torch.ones(2), 2 * torch.ones(2)), 2)
    assert low.tolist() == [-1.0, -1.0] and high.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("maximise", [maximise_adam, maximise_nelder_mead])
def test_optimisers_find_box_constrained_maxima(maximise) -> None:
    """A correlated quadratic peaking outside the box in one coordinate; the first coordinate fixed."""
    peak = torch.tensor([0.3, -0.4, 2.0], dtype=torch.float64)
    precision = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.5]], dtype=torch.float64)

    def objective(theta: torch.Tensor) -> torch.Tensor:
        delta = theta - peak
        return -0.5 * torch.einsum("pci,ij,pcj->pc", delta, precision, delta)

    start = torch.tensor([[0.0, 0.5, 0.0], [1.0, 0.5, 0.0]], dtype=torch.float64)
    free = torch.tensor([False, True, True])
    low, high = torch.full((3,), -1.0, dtype=torch.float64), torch.full((3,), 1.0, dtype=torch.float64)
    theta, value = maximise(objective, start, free, low, high, torch.ones(3, dtype=torch.float64), 300)
    for row in range(2):
        # At the upper bound of the last coordinate, the middle one maximises its 1-D slice.
        fixed_first, last = start[row, 0].item(), 1.0
        middle = peak[1] - (0.8 * (fixed_first - peak[0]) + 0.3 * (last - peak[2])) / 1.0
        np.testing.assert_allclose(theta[row].numpy(), [fixed_first, middle.item(), last], atol=1e-4)
    assert torch.allclose(value, objective(theta[:, None])[:, 0])


# ---------------------------------------------------------------------- profiles


def test_profile_matches_brute_force_on_a_two_parameter_model() -> None:
    """mu and one shapesys gamma (the other fixed at 1): conditional fits against a fine grid.

    The global fit (POI free) is checked against pyhf's own fit.
    """
    model, prior = _simple(parameters=["mu", "uncorr_bkguncrt[0]"])
    likelihood = HistFactoryLikelihood(model)
    x = torch.tensor([62.0, 57.0])
    mus = torch.tensor([0.5, 1.0, 2.0, math.nan], dtype=torch.float64)
    profile = profile_log_ratio(likelihood, prior, x, 0, mus, num_starts=64, num_steps=150)
    assert profile.method == "nelder-mead"

    gammas = torch.linspace(0.6, 1.4, 8001, dtype=torch.float64)
    objective = log_objective(likelihood, prior, x[None])
    for row, mu in enumerate(mus[:3].tolist()):
        grid = torch.stack([torch.full_like(gammas, mu), gammas], -1)
        values = objective(grid[None])[0]
        best = int(values.argmax())
        assert profile.log_value[row].item() == pytest.approx(values[best].item(), abs=PROFILE_ATOL)
        assert profile.theta[row, 1].item() == pytest.approx(gammas[best].item(), abs=2e-3)
        assert profile.theta[row, 0].item() == mu

    # The global fit against pyhf's own (data with the nominal auxiliary data: the same likelihood).
    data = x.tolist() + model.pyhf_model.config.auxdata
    fixed = pyhf_fixed_params(model)
    pyhf_fit = pyhf.infer.mle.fit(data, model.pyhf_model, fixed_params=fixed)
    np.testing.assert_allclose(profile.theta[3].numpy(), pyhf_fit[:2], atol=3e-3)
    assert profile.log_value[3] >= profile.log_value[:3].max()


def test_profile_of_a_ratio_estimator_matches_brute_force(trained_network) -> None:
    """Adam through the network, against a 2-D grid over both nuisance parameters at mu = 1."""
    network, model, prior = trained_network
    x = model.observed_data()
    profile = profile_log_ratio(network, prior, x, 0, torch.tensor([1.0]), num_starts=64, num_steps=300)
    assert profile.method == "adam"

    g0, g1 = torch.meshgrid(
        torch.linspace(0.75, 1.25, 301, dtype=torch.float64),
        torch.linspace(0.5, 1.5, 301, dtype=torch.float64),
        indexing="ij",
    )
    grid = torch.stack([torch.ones_like(g0).flatten(), g0.flatten(), g1.flatten()], -1)
    with torch.no_grad():
        values = log_objective(network, prior, x[None])(grid[None])[0]
    # At least as good as the grid, and not better than the grid's resolution allows.
    assert profile.log_value.item() >= values.max().item() - 1e-4
    assert profile.log_value.item() <= values.max().item() + 2e-3
    np.testing.assert_allclose(profile.theta[0, 1:].numpy(), grid[values.argmax(), 1:].numpy(), atol=0.02)

    again = profile_log_ratio(network, prior, x, 0, torch.tensor([1.0]), num_starts=64, num_steps=300)
    assert torch.equal(again.theta, profile.theta), "not deterministic given the seed"


# ---------------------------------------------------------------------- limits against pyhf


@pytest.mark.parametrize(
    ("data", "include_prior", "asimov", "observed_rtol", "expected_rtol"),
    [
        # x = main + auxiliary data, log r alone = pyhf's logpdf: the same statistics.
        # Measured: observed 4e-6, expected <= 1e-5 (relative).
        ("main_and_auxiliary", False, False, 1e-3, 1e-3),
        # x = main data, constraints in the prior, re-centred for the Asimov fits.
        # Measured: observed 3e-5, expected <= 1.7e-4.
        ("main", True, True, 1e-3, 1e-3),
        # x = main data, constraints in the nominal prior also for the Asimov fits.
        # Measured: observed -2.1%, expected median -6.4% (band -12.8%..-3.3%).
        ("main", True, False, 0.025, 0.07),
    ],
)
def test_exact_likelihood_limits_equal_pyhf(
    pyhf_simple: dict,
    data: str,
    include_prior: bool,
    asimov: bool,
    observed_rtol: float,
    expected_rtol: float,
) -> None:
    """simple.json, all three parameters inferred: our limits from the exact likelihood against pyhf.infer's.

    Known difference: pyhf's Asimov data include auxiliary data at the background-only
    fit (tau * gamma_hat for shapesys). With main data only and the constraints in the
    nominal prior, the Asimov fits keep the nominal auxiliary data, so q_mu_A is larger
    (3.77 against 3.42 at mu = 1) and the limits smaller; q_mu itself is pyhf's (to
    ~1e-4). ``histfactory_asimov_prior`` removes the difference.
    """
    model, prior = _simple(data)
    result = cls_upper_limit(
        HistFactoryLikelihood(model),
        prior,
        model.observed_data(),
        model.expected_data,
        0,
        SCAN,
        include_prior=include_prior,
        asimov_prior=histfactory_asimov_prior(model) if asimov else None,
        num_starts=64,
        num_steps=150,
    )
    json.dumps(result)
    assert result["method"] == "nelder-mead" and result["limits_in_scan"]
    assert result["observed_limit"] == pytest.approx(pyhf_simple["observed_limit"], rel=observed_rtol)
    assert result["expected_limits"][2] == pytest.approx(pyhf_simple["expected_limits"][2], rel=expected_rtol)
    np.testing.assert_allclose(
        result["expected_limits"], pyhf_simple["expected_limits"], rtol=2 * expected_rtol
    )
    assert result["mu_hat"] == pytest.approx(0.0, abs=1e-3)  # pyhf: 0, at the POI's lower bound

    # The observed statistic is pyhf's qtilde in every layout.
    pdf = model.pyhf_model
    pyhf_data = model.workspace.data(pdf)
    for i in (4, 8):
        pyhf_q = pyhf.infer.test_statistics.qmu_tilde(
            SCAN[i],
            pyhf_data,
            pdf,
            pdf.config.suggested_init(),
            pdf.config.suggested_bounds(),
            pyhf_fixed_params(model),
        )
        assert result["q_mu"][i] == pytest.approx(float(pyhf_q), abs=2e-3)


def test_fixed_parameters_are_fixed_in_pyhf_too() -> None:
    """Inferring mu and one gamma only: pyhf fixes the other at 1, as the model does; the limits agree."""
    model, prior = _simple("main_and_auxiliary", ["mu", "uncorr_bkguncrt[1]"])
    assert pyhf_fixed_params(model) == [False, True, False]
    backend = pyhf.get_backend()[0].name
    reference = pyhf_upper_limit(model, SCAN)
    assert pyhf.get_backend()[0].name == backend and torch.get_default_dtype() == torch.float32
    result = cls_upper_limit(
        HistFactoryLikelihood(model),
        prior,
        model.observed_data(),
        model.expected_data,
        0,
        SCAN,
        include_prior=False,
        num_starts=64,
        num_steps=150,
    )
    assert result["observed_limit"] == pytest.approx(reference["observed_limit"], rel=1e-3)
    np.testing.assert_allclose(result["expected_limits"], reference["expected_limits"], rtol=1e-3)
    # Fixing a nuisance parameter tightens the limit (1.0176 with all three free).
    assert reference["observed_limit"] < 1.0


# ---------------------------------------------------------------------- a ratio estimator


def test_ratio_estimator_limits(trained_network, pyhf_simple: dict) -> None:
    """The same code path through autograd: finite, monotone, ordered, near the exact limits."""
    network, model, prior = trained_network
    result = cls_upper_limit(
        network,
        prior,
        model.observed_data(),
        model.expected_data,
        0,
        SCAN,
        asimov_prior=histfactory_asimov_prior(model),
        num_starts=64,
        num_steps=200,
    )
    json.dumps(result)
    assert result["method"] == "adam" and result["limits_in_scan"]
    cls_observed, cls_expected = np.array(result["cls_observed"]), np.array(result["cls_expected"])
    assert np.isfinite(cls_observed).all() and np.isfinite(cls_expected).all()
    assert (np.diff(cls_observed) <= 1e-3).all() and (np.diff(cls_expected, axis=0) <= 1e-3).all()
    assert cls_observed[0] == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.diff(result["expected_limits"]) > 0)
    assert 0 < result["observed_limit"] < SCAN[-1]
    # Trained for 15 epochs only: near pyhf's limits, not equal (measured: observed +11.6%, median +10.9%).
    assert result["observed_limit"] == pytest.approx(pyhf_simple["observed_limit"], rel=0.3)
    assert result["expected_limits"][2] == pytest.approx(pyhf_simple["expected_limits"][2], rel=0.3)


def test_untrained_ratio_estimator_goes_through() -> None:
    _, prior = _simple()
    torch.manual_seed(1)
    network = RatioEstimator(3, [2], hidden_features=8)
    result = cls_upper_limit(
        network,
        prior,
        torch.tensor([51.0, 48.0]),
        lambda theta: torch.tensor([50.0, 50.0]),
        0,
        SCAN,
        num_starts=16,
        num_steps=20,
    )
    assert result["method"] == "adam"
    assert all(
        math.isfinite(v) for v in [result["observed_limit"], *result["expected_limits"], result["mu_hat"]]
    )


def test_limits_take_any_likelihood_estimator_and_refuse_npe() -> None:
    """The one estimator interface: a wrapped ratio network gives the bare network's limits
    exactly, an NLE flow goes through, and NPE (whose log-ratio is not a likelihood) is refused."""
    _, prior = _simple()
    arguments = (prior, torch.tensor([51.0, 48.0]), lambda theta: torch.tensor([50.0, 50.0]), 0, SCAN)
    options = {"num_starts": 16, "num_steps": 20}
    torch.manual_seed(1)
    network = RatioEstimator(3, [2], hidden_features=8)

    def numbers(result: dict) -> dict:
        return {key: value for key, value in result.items() if key != "seconds"}

    bare = cls_upper_limit(network, *arguments, **options)
    wrapped = cls_upper_limit(NREEstimator.from_network(network, "nre", prior), *arguments, **options)
    assert numbers(wrapped) == numbers(bare)
    flow = {"flow": "zuko_maf", "hidden_features": 8, "num_transforms": 1, "num_bins": 8, "dim_theta": 3,
            "x_shape": [2]}
    torch.manual_seed(2)
    nle = cls_upper_limit(NLEEstimator.from_hyperparameters({"method": "nle", **flow}, prior), *arguments, **options)
    assert nle["method"] == "adam" and math.isfinite(nle["observed_limit"])
    npe = NPEEstimator.from_hyperparameters({"method": "npe", **flow}, prior)
    with pytest.raises(ValueError, match="model: the npe estimator's log-ratio is not a likelihood"):
        cls_upper_limit(npe, *arguments, **options)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"poi_index": 3}, "poi_index"),
        ({"poi_index": -1}, "poi_index"),
        ({"scan": [-1.0, 0.0, 1.0]}, "scan"),
        ({"scan": [0.0, 5.0, 12.0]}, "scan"),
        ({"scan": [2.0, 1.0]}, "scan"),
        ({"level": 0.0}, "level"),
        ({"level": 1.5}, "level"),
        ({"asimov_data": lambda theta: torch.zeros(3)}, "asimov_data"),
        ({"method": "lbfgs"}, "method"),
        ({"method": "adam"}, "method"),  # the exact likelihood has no gradients
        ({"x_obs": torch.zeros(3)}, "x_obs"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(change: dict, match: str) -> None:
    model, prior = _simple()
    arguments = {
        "model": HistFactoryLikelihood(model),
        "prior": prior,
        "x_obs": model.observed_data(),
        "asimov_data": model.expected_data,
        "poi_index": 0,
        "scan": [0.0, 1.0, 2.0],
        "num_starts": 4,
        "num_steps": 2,
    }
    with pytest.raises(ValueError, match=match):
        cls_upper_limit(**{**arguments, **change})


def test_pyhf_upper_limit_refuses_bad_input() -> None:
    model, _ = _simple()
    with pytest.raises(ValueError, match="level"):
        pyhf_upper_limit(model, SCAN, level=1.0)
    with pytest.raises(ValueError, match="data"):
        pyhf_upper_limit(model, SCAN, data=[1.0, 2.0, 3.0])


def test_default_scan_stays_inside_the_poi_prior_support():
    """Without upper_limit.scan the workflow scans the POI's prior range, whose upper bound a uniform excludes."""
    from sbi_core.pipeline.limits import limit_scan

    model, prior = _simple("main")
    scan = limit_scan({}, prior, 0)
    assert len(scan) == 41 and scan[0] == 0.0 and 9.999 < scan[-1] < 10.0
    theta = torch.tensor([[float(scan[-1]), 1.0, 1.0]])
    assert bool(prior.support.check(theta).all())
