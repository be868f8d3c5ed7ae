"""Tests for sbi_core.tasks.histfactory: pyhf workspaces as simulator, prior and exact likelihood."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import pyhf
import pytest
import torch
from scipy import stats
from sbi.utils.user_input_checks import process_prior

from sbi_core.errors import ConfigError
from sbi_core.sampling import prior_log_prob
from sbi_core.tasks.histfactory import (
    HistFactoryLikelihood,
    TruncatedNormal,
    build_histfactory,
    build_histfactory_task,
)
from sbi_core.tasks.histfactory.workspace import quiet_schema_validation

REPO = Path(__file__).resolve().parents[1]
WORKSPACES = REPO / "config" / "workspaces"
WHERE = "analyses.demo.histfactory"

MULTICHANNEL_NAMES = (
    "mu", "jes", "ttbar_xsec", "fakes_shape[0]", "fakes_shape[1]",
    "staterror_SR[0]", "staterror_SR[1]", "staterror_SR[2]",
)
# A third model, written here: lumi (a measurement-configured normal constraint), a
# free background normfactor and a shapesys bin without uncertainty (pyhf fixes it).
LUMI_SPEC = {
    "version": "1.0.0",
    "channels": [{
        "name": "ch",
        "samples": [
            {"name": "sig", "data": [5.0, 8.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "lumi", "type": "lumi", "data": None}]},
            {"name": "bkg", "data": [20.0, 15.0], "modifiers": [
                {"name": "bkg_norm", "type": "normfactor", "data": None},
                {"name": "lumi", "type": "lumi", "data": None},
                {"name": "bkg_shape", "type": "shapesys", "data": [0.0, 3.0]}]},
        ],
    }],
    "observations": [{"name": "ch", "data": [24.0, 25.0]}],
    "measurements": [{"name": "lumi_meas", "config": {"poi": "mu", "parameters": [
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.3], "bounds": [[0.0, 3.0]], "inits": [1.0]},
        {"name": "bkg_norm", "bounds": [[0.5, 2.0]], "inits": [1.0]}]}}],
}


@pytest.fixture
def lumi_workspace(tmp_path: Path) -> Path:
    path = tmp_path / "lumi.json"
    path.write_text(json.dumps(LUMI_SPEC))
    return path


def _settings(name: str, **extra) -> dict:
    return {"workspace": str(WORKSPACES / f"{name}.json"), **extra}


def _pyhf_workspace(path: Path) -> pyhf.Workspace:
    with quiet_schema_validation():
        return pyhf.Workspace(json.loads(path.read_text()))


# ------------------------------------------------------------------- shipped workspaces


@pytest.mark.parametrize(
    ("name", "names", "num_main", "num_aux"),
    [
        ("simple", ("mu", "uncorr_bkguncrt[0]", "uncorr_bkguncrt[1]"), 2, 2),
        ("multichannel", MULTICHANNEL_NAMES, 5, 7),
    ],
)
@pytest.mark.parametrize("data", ["main", "main_and_auxiliary"])
def test_shipped_workspaces_build_tasks(name: str, names: tuple, num_main: int, num_aux: int, data: str) -> None:
    path = WORKSPACES / f"{name}.json"
    with quiet_schema_validation():
        pyhf.schema.validate(json.loads(path.read_text()), "workspace.json")
    # A relative path resolves against base_dir.
    task = build_histfactory_task({"workspace": f"{name}.json", "data": data}, WHERE, base_dir=WORKSPACES)
    assert task.name == "histfactory"
    assert task.parameter_names == names
    assert task.prior.event_shape == (len(names),) and task.prior.batch_shape == ()
    torch.manual_seed(0)
    theta = task.prior.sample((500,))
    assert theta.dtype == torch.float32 and theta.shape == (500, len(names))
    log_prob = prior_log_prob(task.prior, theta)
    assert log_prob.shape == (500,) and torch.isfinite(log_prob).all()
    x = task.simulate(theta)
    num_x = num_main + (num_aux if data == "main_and_auxiliary" else 0)
    assert x.dtype == torch.float32 and x.shape == (500, num_x)
    assert torch.isfinite(x).all()
    assert task.reference_posterior is not None
    # x follows pyhf's layout: channels in pyhf's (alphabetical) order, then pyhf's auxdata.
    model, _ = build_histfactory(_settings(name, data=data), WHERE)
    with quiet_schema_validation():
        workspace = pyhf.Workspace(json.loads(path.read_text()))
    expected = workspace.data(workspace.model(), include_auxdata=data == "main_and_auxiliary")
    np.testing.assert_allclose(model.observed_data().numpy(), expected, rtol=1e-6)


def test_simulator_uses_global_rng_and_is_fast() -> None:
    task = build_histfactory_task(_settings("multichannel", data="main_and_auxiliary"), WHERE)
    torch.manual_seed(3)
    theta = task.prior.sample((10_000,))
    torch.manual_seed(4)
    x1 = task.simulate(theta)
    torch.manual_seed(4)
    x2 = task.simulate(theta)
    assert torch.equal(x1, x2)
    assert not torch.equal(x1, task.simulate(theta))
    # The 10,000 rows span two pyhf batches (8192 and a padded 2048); time it warm.
    start = time.perf_counter()
    task.simulate(theta)
    assert time.perf_counter() - start < 5.0


def test_expected_data_in_batches_equals_pyhf() -> None:
    model, prior = build_histfactory(_settings("multichannel", data="main_and_auxiliary"), WHERE)
    torch.manual_seed(0)
    theta = prior.sample((9000,))  # more than one pyhf batch, not a power of two
    expected = model.expected_data(theta)
    pars = model.pyhf_parameters(theta)
    batched = _pyhf_workspace(WORKSPACES / "multichannel.json").model(batch_size=9000)
    reference = np.concatenate(
        [batched.expected_actualdata(pars.numpy()), batched.expected_auxdata(pars.numpy())], axis=1
    )
    np.testing.assert_allclose(expected.numpy(), reference, rtol=1e-12)
    # Parameters not inferred stay at pyhf's suggested initial values.
    model, _ = build_histfactory(_settings("multichannel", parameters=["mu", "jes"]), WHERE)
    pars = model.pyhf_parameters(torch.tensor([[2.0, -0.5]]))[0]
    init = np.array(model.pyhf_model.config.suggested_init())
    init[[1, 0]] = [2.0, -0.5]  # pyhf's order: jes, mu, ...
    np.testing.assert_array_equal(pars.numpy(), init)


# pyhf 0.7.6's shapesys modifier rebuilds its constants from a list of numpy arrays whenever
# the backend switches to pytorch, which torch warns is slow; the warning is about pyhf's code.
@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy.ndarrays:UserWarning")
def test_pyhf_backend_is_restored() -> None:
    model, _ = build_histfactory(_settings("simple"), WHERE)
    theta = torch.tensor([[1.5, 0.9, 1.2]])
    expected = model.expected_data(theta)
    # pyhf's pytorch backend also sets torch's default dtype (to float64): restore it too.
    default_dtype = torch.get_default_dtype()
    pyhf.set_backend("pytorch")
    try:
        np.testing.assert_array_equal(model.expected_data(theta).numpy(), expected.numpy())
        assert pyhf.get_backend()[0].name == "pytorch"
    finally:
        pyhf.set_backend("numpy")
        torch.set_default_dtype(default_dtype)


# ------------------------------------------------------------------------- simulator


@pytest.mark.parametrize("name", ["multichannel", "lumi"])
def test_simulated_moments_match_pyhf(name: str, lumi_workspace: Path) -> None:
    path = lumi_workspace if name == "lumi" else WORKSPACES / f"{name}.json"
    model, _ = build_histfactory({"workspace": str(path), "data": "main_and_auxiliary"}, WHERE)
    pyhf_model = _pyhf_workspace(path).model()
    thetas = {
        "multichannel": [[0.5, 0.8, -1.3, 1.1, 0.85, 1.05, 0.9, 1.1], [2.5, -1.7, 0.4, 0.9, 1.2, 0.95, 1.1, 0.93]],
        "lumi": [[0.5, 0.9, 1.4, 1.1], [2.0, 1.3, 0.8, 0.85]],
    }[name]
    num = 40_000
    torch.manual_seed(0)
    for theta in thetas:
        x = model.simulate(torch.tensor([theta]).expand(num, -1)).double().numpy()
        pars = model.pyhf_parameters(torch.tensor(theta)).numpy()
        main_mean = np.asarray(pyhf_model.expected_actualdata(pars))
        aux_mean = np.asarray(pyhf_model.expected_auxdata(pars))
        # Variances: Poisson (= mean) for main data and shapesys, sigma^2 for normal constraints.
        # Relative standard errors of a sample variance: sqrt((2 + 1 / mean) / n) for a
        # Poisson, sqrt(2 / n) for a normal.
        aux_var, aux_excess = np.empty_like(aux_mean), np.zeros_like(aux_mean)
        offset = 0
        for set_name in pyhf_model.config.auxdata_order:
            paramset = pyhf_model.config.param_set(set_name)
            part = slice(offset, offset + paramset.n_parameters)
            if paramset.pdf_type == "poisson":
                aux_var[part], aux_excess[part] = aux_mean[part], 1 / aux_mean[part]
            else:
                aux_var[part] = np.asarray(paramset.width()) ** 2
            offset += paramset.n_parameters
        mean = np.concatenate([main_mean, aux_mean])
        var = np.concatenate([main_mean, aux_var])
        var_se = np.sqrt((2 + np.concatenate([1 / main_mean, aux_excess])) / num)
        np.testing.assert_array_less(np.abs(x.mean(0) - mean), 5 * np.sqrt(var / num))
        np.testing.assert_array_less(np.abs(x.var(0) / var - 1), 5 * var_se)
        # Poisson parts are integer counts.
        assert np.all(x[:, : model.num_main] == np.round(x[:, : model.num_main]))


def test_invalid_rates_give_nan_rows_and_minus_inf_likelihood() -> None:
    task = build_histfactory_task(_settings("multichannel"), WHERE)
    model, _ = build_histfactory(_settings("multichannel"), WHERE)
    likelihood = HistFactoryLikelihood(model)
    good = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    bad = [1.0, 0.0, 0.0, 1.0, 1.0, -0.5, 1.0, 1.0]  # a negative staterror gamma: negative yield
    theta = torch.tensor([good, bad])
    torch.manual_seed(0)
    x = task.simulate(theta)
    assert torch.isfinite(x[0]).all() and torch.isnan(x[1]).all()
    log_likelihood = likelihood.all_pairs(theta, x[:1])
    assert torch.isfinite(log_likelihood[0, 0]) and log_likelihood[1, 0] == -torch.inf


def test_zero_rates(lumi_workspace: Path) -> None:
    # lumi = 0 zeroes every rate: zero counts are certain, a positive count impossible (as in pyhf).
    model, _ = build_histfactory({"workspace": str(lumi_workspace)}, WHERE)
    likelihood = HistFactoryLikelihood(model)
    assert model.parameter_names == ("mu", "lumi", "bkg_norm", "bkg_shape[1]")
    theta = torch.tensor([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    x = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    values = likelihood.all_pairs(theta, x)
    assert values[0, 0] == 0.0 and values[0, 1] == -torch.inf
    assert torch.isfinite(values[1]).all()
    pars = model.pyhf_parameters(theta[0]).numpy()
    assert float(model.pyhf_model.mainlogpdf(x[0].double().numpy(), pars)) == 0.0
    chains = theta[:1, None].expand(2, 1, 4)
    np.testing.assert_array_equal(likelihood.per_observation(chains, x)[:, 0].numpy(), values[0].numpy())


# ------------------------------------------------------------------------ likelihood


@pytest.mark.parametrize("name", ["simple", "multichannel", "lumi"])
@pytest.mark.parametrize("data", ["main", "main_and_auxiliary"])
def test_log_likelihood_equals_pyhf_logpdf(name: str, data: str, lumi_workspace: Path) -> None:
    path = lumi_workspace if name == "lumi" else WORKSPACES / f"{name}.json"
    model, prior = build_histfactory({"workspace": str(path), "data": data}, WHERE)
    pyhf_model = _pyhf_workspace(path).model()
    likelihood = HistFactoryLikelihood(model)
    assert likelihood.dim_theta == model.pyhf_model.config.npars - (name == "lumi")
    assert likelihood.x_shape == (model.num_x,)
    torch.manual_seed(1)
    theta = prior.sample((4,))
    x = model.simulate(prior.sample((3,)))
    all_pairs = likelihood.all_pairs(theta, x)
    assert all_pairs.shape == (4, 3) and all_pairs.dtype == torch.float32
    for i in range(4):
        pars = model.pyhf_parameters(theta[i]).numpy()
        for j in range(3):
            xj = x[j].double().numpy()
            if data == "main":
                expected = pyhf_model.mainlogpdf(xj, pars)
            else:
                expected = pyhf_model.logpdf(pars, xj)
            assert all_pairs[i, j].item() == pytest.approx(float(np.asarray(expected).item()), rel=1e-6, abs=1e-4)
    # per_observation evaluates the same function on [M, C, d] chains.
    chains = theta[None].expand(3, -1, -1)
    np.testing.assert_allclose(likelihood.per_observation(chains, x).numpy(), all_pairs.T.numpy(), rtol=1e-6)
    assert next(likelihood.parameters()).device.type == "cpu"


# ----------------------------------------------------------------------------- priors


def test_default_priors_follow_the_constraint_terms() -> None:
    model, prior = build_histfactory(_settings("multichannel"), WHERE)
    # By hand from the JSON: staterror sigma = sqrt(sum delta^2) / sum nominal per SR bin,
    # shapesys tau = (b / delta_b)^2 per CR bin.
    sigma = np.sqrt(np.array([0.4**2 + 2.1**2 + 1.2**2, 0.6**2 + 1.6**2 + 0.9**2, 0.5**2 + 1.1**2 + 0.6**2]))
    sigma /= np.array([48.0, 33.5, 17.0])
    tau = (np.array([60.0, 44.0]) / np.array([9.0, 8.0])) ** 2
    theta = np.array([1.7, 0.4, -1.2, 0.95, 1.1, 1.04, 0.97, 1.1])
    expected = (
        stats.uniform(0, 5).logpdf(theta[0])
        + stats.norm(0, 1).logpdf(theta[1:3]).sum()
        + sum(stats.gamma(t + 1, scale=1 / t).logpdf(g) for t, g in zip(tau, theta[3:5]))
        + sum(stats.truncnorm(-1 / s, np.inf, loc=1, scale=s).logpdf(g) for s, g in zip(sigma, theta[5:]))
    )
    value = prior_log_prob(prior, torch.tensor(theta, dtype=torch.float32)[None])
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # Outside the support (mu > 5, a negative gamma): -inf, not an error.
    outside = torch.tensor([theta, theta], dtype=torch.float32)
    outside[0, 0], outside[1, 3] = 5.5, -0.1
    assert (prior_log_prob(prior, outside) == -torch.inf).all()


def test_lumi_prior_is_truncated_and_fixed_bins_are_left_out(lumi_workspace: Path) -> None:
    model, prior = build_histfactory({"workspace": str(lumi_workspace)}, WHERE)
    # bkg_shape[0] has no uncertainty: pyhf fixes it, so it is not inferred.
    assert model.parameter_names == ("mu", "lumi", "bkg_norm", "bkg_shape[1]")
    torch.manual_seed(0)
    samples = prior.sample((100_000,)).double()
    assert samples[:, 0].min() >= 0 and samples[:, 0].max() <= 10  # mu: pyhf's default bounds
    assert samples[:, 2].min() >= 0.5 and samples[:, 2].max() <= 2.0  # bkg_norm: the measurement's
    lumi = stats.truncnorm(-1 / 0.3, np.inf, loc=1, scale=0.3)
    assert samples[:, 1].min() > 0
    assert samples[:, 1].mean().item() == pytest.approx(lumi.mean(), abs=5 * lumi.std() / math.sqrt(1e5))
    assert samples[:, 1].std().item() == pytest.approx(lumi.std(), rel=0.01)
    assert samples[:, 3].mean().item() == pytest.approx(26 / 25, abs=2e-3)  # Gamma(26, 25): tau = 25


@pytest.mark.parametrize(("loc", "scale"), [(1.0, 0.05), (0.5, 1.0), (-1.0, 0.5)])
def test_truncated_normal_matches_scipy(loc: float, scale: float) -> None:
    dist = TruncatedNormal(torch.tensor([loc]), torch.tensor([scale]), 0.0)
    reference = stats.truncnorm(-loc / scale, np.inf, loc=loc, scale=scale)
    value = torch.tensor([[0.01], [0.3], [1.2], [2.5]])
    np.testing.assert_allclose(dist.log_prob(value).numpy(), reference.logpdf(value.numpy()), rtol=1e-5)
    np.testing.assert_allclose(dist.mean.item(), reference.mean(), rtol=1e-5)
    np.testing.assert_allclose(dist.variance.item(), reference.var(), rtol=1e-4)
    torch.manual_seed(0)
    samples = dist.sample((100_000,))
    assert samples.shape == (100_000, 1) and samples.dtype == torch.float32 and (samples > 0).all()
    assert stats.kstest(samples.double().numpy().ravel(), reference.cdf).pvalue > 1e-3


def test_prior_overrides() -> None:
    priors = {"mu": {"type": "uniform", "low": 0.5, "high": 2.0}, "jes": {"type": "normal", "mean": 0.2, "std": 0.5}}
    _, prior = build_histfactory(_settings("multichannel", parameters=["mu", "jes"], priors=priors), WHERE)
    theta = torch.tensor([[1.0, 0.7], [2.5, 0.0]])
    log_prob = prior_log_prob(prior, theta)
    assert log_prob[0].item() == pytest.approx(math.log(1 / 1.5) + stats.norm(0.2, 0.5).logpdf(0.7), rel=1e-6)
    assert log_prob[1] == -torch.inf


@pytest.mark.parametrize("parameters", [["mu"], None])
def test_prior_works_with_sbi(parameters: list | None) -> None:
    extra = {} if parameters is None else {"parameters": parameters}
    _, prior = build_histfactory(_settings("multichannel", **extra), WHERE)
    processed, _, returns_numpy = process_prior(prior)
    assert not returns_numpy
    torch.manual_seed(0)
    theta = processed.sample((10,))
    assert theta.shape == (10, prior.event_shape[0])
    assert torch.isfinite(processed.log_prob(theta)).all()


# ----------------------------------------------------------------- reference posterior


def test_reference_posterior_matches_grid_integration() -> None:
    # mu and the background gamma of bin 1 of the simple model, observed data [51, 48]:
    # prior U(0, 10) x Gamma(tau + 1, tau), likelihood Poisson(51 | 12 mu + 50) Poisson(48 | 11 mu + 52 gamma).
    task = build_histfactory_task(_settings("simple", parameters=["mu", "uncorr_bkguncrt[1]"]), WHERE)
    x_o = torch.tensor([51.0, 48.0])
    tau = (52.0 / 7.0) ** 2
    edges = {"mu": np.linspace(0.0, 10.0, 1001), "gamma": np.linspace(0.3, 1.9, 801)}
    mu, gamma = [((e[1:] + e[:-1]) / 2) for e in edges.values()]  # cell midpoints
    log_post = (
        stats.poisson.logpmf(51, 12.0 * mu[:, None] + 50.0)
        + stats.poisson.logpmf(48, 11.0 * mu[:, None] + 52.0 * gamma[None, :])
        + stats.gamma(tau + 1, scale=1 / tau).logpdf(gamma[None, :])
    )
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    marginals = [(mu, edges["mu"], weight.sum(1)), (gamma, edges["gamma"], weight.sum(0))]

    torch.manual_seed(7)
    samples = task.reference_posterior(x_o, 8000).double().numpy()
    assert samples.shape == (8000, 2)
    for k, (values, cell_edges, marginal) in enumerate(marginals):
        mean = (values * marginal).sum()
        std = math.sqrt(((values - mean) ** 2 * marginal).sum())
        cdf = np.concatenate([[0.0], np.cumsum(marginal)])  # at the cell edges
        # Over seeds the deviations stay below 0.05 std with 16,000 samples; a posterior that
        # dropped or doubled the gamma's constraint would miss these by far.
        assert samples[:, k].mean() == pytest.approx(mean, abs=0.08 * std)
        assert samples[:, k].std() == pytest.approx(std, rel=0.05)
        for q in (0.1, 0.5, 0.9):
            assert np.quantile(samples[:, k], q) == pytest.approx(np.interp(q, cdf, cell_edges), abs=0.1 * std)
    # The same seed gives the same samples; x_o may also come as [1, n_x].
    torch.manual_seed(7)
    first = task.reference_posterior(x_o[None], 300)
    torch.manual_seed(7)
    assert torch.equal(task.reference_posterior(x_o, 300), first)


# ---------------------------------------------------------------------- bad workspaces


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ws.json"
    path.write_text(text)
    return path


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"channels": [')
    with pytest.raises(ConfigError, match=r"^analyses\.demo\.histfactory\.workspace: .*ws\.json.* not valid JSON: Expecting"):
        build_histfactory({"workspace": str(path)}, WHERE)


@pytest.mark.parametrize(
    ("edit", "pyhf_says"),
    [
        (lambda s: s["channels"][0]["samples"][0]["modifiers"][0].update(type="normfactr"), "is not valid under any"),
        (lambda s: s.pop("measurements"), "'measurements' is a required property"),
        (lambda s: s["channels"][0]["samples"][1].update(data="many"), "is not of type 'array'"),
    ],
)
def test_schema_invalid_workspace_is_refused(tmp_path: Path, edit, pyhf_says: str) -> None:
    spec = json.loads((WORKSPACES / "simple.json").read_text())
    edit(spec)
    path = _write(tmp_path, json.dumps(spec))
    with pytest.raises(ConfigError) as info:
        build_histfactory({"workspace": str(path)}, WHERE)
    message = str(info.value)
    assert message.startswith(f"{WHERE}.workspace: '{path}' is not a valid pyhf workspace: pyhf says: ")
    assert pyhf_says in message


@pytest.mark.parametrize(
    ("spec_text", "match"),
    [
        ("[1, 2]", r"is not a pyhf workspace: expected a JSON object"),
        (None, r"workspace file .*missing\.json' not found"),
    ],
)
def test_other_bad_files_are_refused(tmp_path: Path, spec_text: str | None, match: str) -> None:
    path = tmp_path / "missing.json" if spec_text is None else _write(tmp_path, spec_text)
    with pytest.raises(ConfigError, match=rf"^{WHERE}\.workspace: .*{match}"):
        build_histfactory({"workspace": str(path)}, WHERE)


def test_model_pyhf_cannot_build_is_refused(tmp_path: Path) -> None:
    spec = json.loads((WORKSPACES / "simple.json").read_text())
    spec["channels"][0]["samples"][1]["modifiers"][0]["data"] = [3.0]  # one bin short
    path = _write(tmp_path, json.dumps(spec))
    with pytest.raises(ConfigError, match=r"^analyses\.demo\.histfactory\.workspace: pyhf cannot build .*ws\.json.*data shape inconsistent"):
        build_histfactory({"workspace": str(path)}, WHERE)


def test_lumi_without_measurement_config_is_refused(tmp_path: Path) -> None:
    # pyhf itself fails with a TypeError here (the lumi constraint has no auxdata).
    spec = copy.deepcopy(LUMI_SPEC)
    spec["measurements"][0]["config"]["parameters"] = []
    path = _write(tmp_path, json.dumps(spec))
    with pytest.raises(ConfigError, match=rf"^{WHERE}\.workspace: pyhf cannot build .*ws\.json.*TypeError"):
        build_histfactory({"workspace": str(path)}, WHERE)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"measurement": "Nope"}, r"\.measurement: '.*simple\.json' has no measurement 'Nope' \(pyhf says: no measurement by name 'Nope'.*its measurements are Measurement"),
        ({"parameters": ["mu", "nu"]}, r"\.parameters\[1\]: workspace '.*simple\.json', measurement 'Measurement' has no parameter 'nu'; its parameters are mu, uncorr_bkguncrt\[0\]"),
        ({"parameters": ["mu", "uncorr_bkguncrt[2]"]}, r"\.parameters\[1\]: .*simple\.json.* has no parameter 'uncorr_bkguncrt\[2\]'"),
        ({"parameters": ["mu", "mu"]}, r"\.parameters: each parameter may be named once; repeated: mu"),
        ({"parameters": []}, r"\.parameters: expected a non-empty list"),
        ({"priors": {"nu": {"type": "normal", "mean": 0, "std": 1}}}, r"\.priors\.nu: not an inferred parameter of workspace '.*simple\.json'"),
        ({"parameters": ["mu"], "priors": {"uncorr_bkguncrt[0]": {"type": "normal", "mean": 1, "std": 0.1}}}, r"\.priors\.uncorr_bkguncrt\[0\]: not an inferred parameter .*add it to 'parameters'"),
        ({"priors": {"mu": {"type": "uniform", "low": 2, "high": 1}}}, r"\.priors\.mu\.high: must exceed low = 2, got 1"),
        ({"priors": {"mu": {"type": "normal", "mean": 1, "std": 0}}}, r"\.priors\.mu\.std: must be > 0"),
        ({"priors": {"mu": {"type": "gamma"}}}, r"\.priors\.mu: expected \{type: uniform"),
        ({"priors": {"mu": {"type": "uniform", "low": 0, "high": 1, "std": 1}}}, r"\.priors\.mu\.std: unknown key for a uniform prior"),
        ({"data": "auxiliary"}, r"\.data: expected one of main, main_and_auxiliary, got 'auxiliary'"),
        ({"simulator": "x:y"}, r"\.simulator: unknown key; allowed: workspace, measurement"),
    ],
)
def test_bad_settings_are_refused(extra: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{WHERE}{match}"):
        build_histfactory(_settings("simple", **extra), WHERE)


def test_vector_names_expand_and_fixed_parameters_are_refused(lumi_workspace: Path) -> None:
    model, _ = build_histfactory(_settings("multichannel", parameters=["staterror_SR", "mu"]), WHERE)
    assert model.parameter_names == ("staterror_SR[0]", "staterror_SR[1]", "staterror_SR[2]", "mu")
    with pytest.raises(ConfigError, match=rf"^{WHERE}\.parameters\[1\]: 'bkg_shape\[0\]' is fixed in workspace '.*lumi\.json'"):
        build_histfactory({"workspace": str(lumi_workspace), "parameters": ["mu", "bkg_shape[0]"]}, WHERE)
    spec = copy.deepcopy(LUMI_SPEC)
    lumi_config = LUMI_SPEC["measurements"][0]["config"]["parameters"][0]
    spec["measurements"].append({"name": "second", "config": {"poi": "bkg_norm", "parameters": [lumi_config]}})
    lumi_workspace.write_text(json.dumps(spec))
    model, _ = build_histfactory({"workspace": str(lumi_workspace), "measurement": "second"}, WHERE)
    assert model.parameter_names[0] == "bkg_norm"
    assert model.measurement == "second"
