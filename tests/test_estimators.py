"""Every method through one estimator interface (sbi_core.estimators), on the `--device` of the run:
the log-ratio in both layouts and its gradients, its accuracy against the exact Gaussian-linear
log-ratio, the batched posterior, and the artifact reloaded in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from sbi.utils import BoxUniform
from torch.distributions import MultivariateNormal

from sbi_core.errors import ArtifactError, ConfigError, SamplingError
from sbi_core.estimators import (
    LIKELIHOOD_METHODS,
    METHODS,
    REGISTRY,
    Estimator,
    NPEEstimator,
    NREEstimator,
    load_estimator,
    method_spec,
    train_estimator,
)
from sbi_core.io import load_state, save_state
from sbi_core.ratio import RatioEstimator
from sbi_core.seeding import seed_everything
from sbi_core.tasks.gaussian_linear import NOISE_VARIANCE, PRIOR_VARIANCE, gaussian_conjugate_posterior

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: small networks, one torch thread

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"

# The Gaussian-linear task (sbi_core.tasks.gaussian_linear) in 2 dimensions, where small
# networks trained for seconds are accurate: prior N(0, 0.1 I), x ~ N(theta, 0.1 I).
DIM = 2
PRIOR = MultivariateNormal(torch.zeros(DIM), PRIOR_VARIANCE * torch.eye(DIM))
X_O = torch.tensor([[0.4, -0.2], [0.0, 0.3], [-0.3, -0.3]])
TRAINING = {
    "flow": "zuko_maf",
    "hidden_features": 32,
    "num_transforms": 2,
    "num_bins": 8,
    "batch_size": 200,
    "learning_rate": 2e-3,
    "max_epochs": 60,
    "patience": 10,
    "validation_fraction": 0.1,
    "num_blocks": 2,
    "num_atoms": 10,
    "gamma": 1.0,
    "regularization_strength": 100.0,
}
SAMPLING = {"num_samples": 500, "sampler": "sir", "num_chains": 20, "warmup_steps": 50, "thin": 5}
# One flow and one ratio method sample by MCMC, the others by SIR.
SAMPLERS = {"nle": "mcmc", "nre": "mcmc"}
# Residual spread / exact spread of the log-ratio over posterior draws, per observation (measured
# 0.09-0.40 at these budgets; BNRE, conservative by design, is flattest). A log-ratio of the wrong
# sign gives about 2, one without NPE's prior term or one ignoring theta about 1.
TOLERANCE = 0.5


def _simulate(num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        theta = PRIOR.sample((num,))
        return theta, theta + NOISE_VARIANCE**0.5 * torch.randn_like(theta)


def _exact_posterior(x_o: torch.Tensor) -> MultivariateNormal:
    eye = torch.eye(DIM)
    return gaussian_conjugate_posterior(torch.zeros(DIM), PRIOR_VARIANCE * eye, NOISE_VARIANCE * eye, x_o)


def _exact_log_ratio(theta: torch.Tensor, x_o: torch.Tensor) -> torch.Tensor:
    """``log p(x_o | theta) - log p(x_o)`` for theta ``[S, d]``; ``p(x) = N(0, (0.1 + 0.1) I)``."""
    likelihood = MultivariateNormal(theta, NOISE_VARIANCE * torch.eye(DIM)).log_prob(x_o)
    evidence = MultivariateNormal(torch.zeros(DIM), (PRIOR_VARIANCE + NOISE_VARIANCE) * torch.eye(DIM))
    return likelihood - evidence.log_prob(x_o)


def _relative_spread(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    """The spread of ``estimate - exact`` over theta relative to the exact one's: 0 for a log-ratio
    exact up to a constant, about 1 for one that ignores theta."""
    return float((estimate - exact).std() / exact.std())


@pytest.fixture(scope="module")
def trained(device: str):
    """``trained(method) -> (estimator, history)``, each method trained once, on first use, on
    3000 simulations (seeded), with the method's registry keys of TRAINING only."""
    theta, x = _simulate(3000, seed=0)
    cache: dict[str, tuple[Estimator, dict]] = {}

    def get(method: str) -> tuple[Estimator, dict]:
        if method not in cache:
            seed_everything(1)
            training = {key: TRAINING[key] for key in method_spec(method).training_keys if key in TRAINING}
            cache[method] = train_estimator(method, theta, x, PRIOR, training, device=device)
        return cache[method]

    return get


# ---------------------------------------------------------------------- the registry


def test_registry_names_every_method_once_with_keys_the_schema_knows():
    assert METHODS == tuple(REGISTRY) == ("npe", "nle", "nre", "nre_a", "nre_c", "bnre")
    assert LIKELIHOOD_METHODS == ("nle", "nre", "nre_a", "nre_c", "bnre")
    schema = yaml.safe_load(SCHEMA.read_text())
    blocks = {name: _schema_block(schema, name) for name in ("training", "sampling")}
    for spec in REGISTRY.values():
        assert spec.family in ("flow", "ratio") and spec.description
        assert (spec.loss is None) == (spec.family == "flow")
        assert set(spec.training_keys) <= set(blocks["training"]), spec.name
        assert set(spec.sampling_keys) <= set(blocks["sampling"]), spec.name
        assert len(set(spec.training_keys)) == len(spec.training_keys)
    assert method_spec("npe").sampling_keys == ("num_samples",)
    with pytest.raises(ValueError, match="npx"):
        method_spec("npx")


def _schema_block(schema: object, name: str) -> dict:
    """The ``properties`` of the first object schema under key `name`, searched depth first."""
    if isinstance(schema, dict):
        if isinstance(schema.get(name), dict) and "properties" in schema[name]:
            return schema[name]["properties"]
        children = schema.values()
    elif isinstance(schema, list):
        children = schema
    else:
        children = []
    for child in children:
        found = _schema_block(child, name)
        if found:
            return found
    return {}


# ---------------------------------------------------------------------- the log-ratio


@pytest.mark.parametrize("method", METHODS)
def test_all_pairs_equals_per_observation(trained, method: str, device: str):
    """The diagonal of all pairs is the per-observation form on matching pairs, and the
    per-observation form on any gathered pairs equals the all-pairs entries."""
    estimator, _ = trained(method)
    theta, _ = _simulate(6, seed=2)
    matrix = estimator.log_ratio(theta, X_O)
    assert matrix.shape == (6, 3) and matrix.device.type == torch.device(device).type
    assert torch.isfinite(matrix).all()
    diagonal = estimator.log_ratio(theta[:3, None, :], X_O)
    assert diagonal.shape == (3, 1)
    torch.testing.assert_close(diagonal[:, 0], matrix[:3].diagonal(), rtol=1e-5, atol=1e-5)
    index = torch.randint(0, 6, (3, 4), generator=torch.Generator().manual_seed(3))
    gathered = estimator.per_observation(theta[index], X_O)
    torch.testing.assert_close(gathered, matrix[index, torch.arange(3)[:, None]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(estimator(theta, X_O), matrix)  # calling it is log_ratio


@pytest.mark.parametrize("method", METHODS)
def test_gradients_reach_theta_and_x(trained, method: str):
    estimator, _ = trained(method)
    for theta_shape in ((5, DIM), (3, 4, DIM)):  # all pairs, then per observation
        theta = (0.3 * torch.randn(*theta_shape, generator=torch.Generator().manual_seed(4))).requires_grad_()
        x = X_O.clone().requires_grad_()
        estimator.log_ratio(theta, x).sum().backward()
        for name, tensor in (("theta", theta), ("x", x)):
            assert tensor.grad is not None and torch.isfinite(tensor.grad).all(), (name, theta_shape)
            assert tensor.grad.abs().sum() > 0, (name, theta_shape)


@pytest.mark.parametrize("method", METHODS)
def test_log_ratio_tracks_the_exact_gaussian_linear_log_ratio(trained, method: str):
    """Over draws from each observation's exact posterior, the log-ratio equals the exact
    ``log p(x | theta) - log p(x)`` up to a constant per x; its negative fails, and so does NPE's
    flow without the log-prior divided out (its posterior, not its ratio)."""
    estimator, history = trained(method)
    assert history["epochs_trained"] == len(history["training_loss"]) >= 5
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        theta = torch.stack([_exact_posterior(x_o).sample((500,)) for x_o in X_O])  # [3, 500, d]
    with torch.no_grad():
        estimate = estimator.log_ratio(theta, X_O).cpu()
    for m, x_o in enumerate(X_O):
        exact = _exact_log_ratio(theta[m], x_o)
        assert _relative_spread(estimate[m], exact) < TOLERANCE, (m, _relative_spread(estimate[m], exact))
        assert _relative_spread(-estimate[m], exact) > 2 * TOLERANCE
        if method == "npe":
            flow_posterior = estimate[m] + PRIOR.log_prob(theta[m])
            assert _relative_spread(flow_posterior, exact) > 1.5 * TOLERANCE


def test_npe_log_ratio_is_minus_infinity_outside_the_prior_support(device: str):
    """Outside a box prior's support NPE's ratio is -inf, with finite gradients everywhere."""
    estimator = _untrained_npe(BoxUniform(-torch.ones(DIM), torch.ones(DIM))).to(device)
    theta = torch.tensor([[0.2, -0.5], [1.5, 0.0], [-0.9, 0.9]], requires_grad=True)
    log_ratio = estimator.log_ratio(theta, X_O)
    assert torch.equal(log_ratio.isneginf().all(1).cpu(), torch.tensor([False, True, False]))
    assert torch.isfinite(log_ratio[[0, 2]]).all()
    log_ratio[[0, 2]].sum().backward()
    assert torch.isfinite(theta.grad).all() and theta.grad[[0, 2]].abs().sum() > 0
    per_observation = estimator.log_ratio(theta.detach()[None].expand(3, -1, -1), X_O)
    torch.testing.assert_close(per_observation, log_ratio.detach().T)


def test_an_estimator_without_its_prior_says_how_to_give_it():
    estimator = _untrained_npe(None)
    with pytest.raises(ValueError, match=r"prior: .*load_estimator\(path, prior=\.\.\.\)"):
        estimator.log_ratio(torch.zeros(2, DIM), X_O)
    with pytest.raises(ValueError, match="prior"):
        estimator.posterior({"num_samples": 10})


def test_shapes_are_checked_where_they_enter():
    estimator = NREEstimator.from_network(RatioEstimator(DIM, [DIM], hidden_features=8), "nre", PRIOR)
    with pytest.raises(ValueError, match=r"theta: expected shape \[N, d\] with d = 2"):
        estimator.log_ratio(torch.zeros(4, 3), X_O)
    with pytest.raises(ValueError, match=r"x: expected shape \[M, 2\]"):
        estimator.log_ratio(torch.zeros(4, DIM), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="the same M"):
        estimator.log_ratio(torch.zeros(2, 4, DIM), X_O)


def _untrained_npe(prior) -> NPEEstimator:
    hyperparameters = {"method": "npe", "flow": "zuko_maf", "hidden_features": 8, "num_transforms": 1,
                       "num_bins": 8, "dim_theta": DIM, "x_shape": [DIM]}
    torch.manual_seed(6)
    return NPEEstimator.from_hyperparameters(hyperparameters, prior)


# ---------------------------------------------------------------------- the posterior


@pytest.mark.parametrize("method", METHODS)
def test_posterior_of_many_observations_at_once(trained, method: str):
    """Samples [M, S, d] on the CPU with the exact posterior means N(x/2, 0.05 I), and a
    log-density that tracks the exact one up to a constant per observation."""
    estimator, _ = trained(method)
    posterior = estimator.posterior({**SAMPLING, "sampler": SAMPLERS.get(method, "sir")})
    seed_everything(7)
    samples = posterior.sample(X_O, 500)
    assert samples.shape == (3, 500, DIM) and samples.device.type == "cpu"
    assert (samples.mean(1) - X_O / 2).abs().max() < 0.1
    log_density = posterior.log_density(samples, X_O)
    assert log_density.shape == (3, 500) and log_density.device.type == "cpu"
    assert torch.isfinite(log_density).all()
    for m, x_o in enumerate(X_O):
        exact = _exact_posterior(x_o).log_prob(samples[m])
        assert _relative_spread(log_density[m], exact) < TOLERANCE


def test_posterior_samples_repeat_for_the_same_seed(trained):
    estimator, _ = trained("npe")
    posterior = estimator.posterior(SAMPLING)
    draws = []
    for _ in range(2):
        seed_everything(8)
        draws.append(posterior.sample(X_O[:1], 20))
    assert torch.equal(*draws)


# ---------------------------------------------------------------------- training and the artifact


def test_unknown_methods_and_missing_training_keys_are_refused():
    theta, x = _simulate(50, seed=9)
    with pytest.raises(ValueError, match="got 'npx'"):
        train_estimator("npx", theta, x, PRIOR, TRAINING)
    training = {key: value for key, value in TRAINING.items() if key != "gamma"}
    with pytest.raises(ConfigError, match="training.gamma: nre_c reads it"):
        train_estimator("nre_c", theta, x, PRIOR, training)


@pytest.fixture(scope="module")
def reloaded(trained, tmp_path_factory) -> tuple[dict, dict]:
    """Every method saved, then loaded in one fresh process with ``weights_only=True``: the
    artifact's keys and devices, and the reloaded all-pairs log-ratio on a probe batch."""
    folder = tmp_path_factory.mktemp("estimators")
    theta, x = _simulate(7, seed=10)
    torch.save({"theta": theta, "x": x[:5]}, folder / "probe.pt")
    expected = {}
    for method in METHODS:
        estimator, _ = trained(method)
        estimator.save(folder / f"{method}.pt", provenance={"seed": 1})
        with torch.no_grad():
            expected[method] = estimator.log_ratio(theta, x[:5]).cpu()
    script = textwrap.dedent(
        f"""
        import json, torch
        from torch.distributions import MultivariateNormal
        from sbi_core.estimators import METHODS, load_estimator
        prior = MultivariateNormal(torch.zeros({DIM}), {PRIOR_VARIANCE} * torch.eye({DIM}))
        probe = torch.load({str(folder / 'probe.pt')!r}, weights_only=True)
        report, outputs = {{}}, {{}}
        for method in METHODS:
            path = {str(folder)!r} + f"/{{method}}.pt"
            raw = torch.load(path, weights_only=True)  # plain tensors and JSON strings
            estimator = load_estimator(path, prior=prior)
            report[method] = {{
                "keys": sorted(raw),
                "devices": sorted({{t.device.type for t in raw["state_dict"].values()}}),
                "method": estimator.method,
            }}
            with torch.no_grad():
                outputs[method] = estimator.log_ratio(probe["theta"], probe["x"])
        torch.save(outputs, {str(folder / 'out.pt')!r})
        print(json.dumps(report))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    outputs = torch.load(folder / "out.pt", weights_only=True)
    return report, {method: (expected[method], outputs[method]) for method in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_reloads_in_a_fresh_process_with_identical_log_ratios(reloaded, method: str, device: str):
    report, outputs = reloaded
    assert report[method] == {"keys": ["hyperparameters", "provenance", "state_dict"], "devices": ["cpu"],
                              "method": method}
    expected, reloaded_output = outputs[method]
    if device == "cpu":
        torch.testing.assert_close(reloaded_output, expected, rtol=0, atol=0)
    else:  # trained on the GPU, evaluated there; reloaded on the CPU
        torch.testing.assert_close(reloaded_output, expected, rtol=1e-4, atol=1e-4)


def test_load_refuses_foreign_files_naming_them(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ArtifactError, match=r"foreign\.pt: not an sbi_core estimator file"):
        load_estimator(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(ArtifactError, match=r"text\.pt: not an sbi_core estimator file"):
        load_estimator(tmp_path / "text.pt")
    save_state(tmp_path / "npx.pt", {}, {"method": "npx"})
    with pytest.raises(ArtifactError, match=r"npx\.pt: hyperparameters\.method is 'npx'"):
        load_estimator(tmp_path / "npx.pt")

    estimator = NREEstimator.from_network(RatioEstimator(DIM, [DIM], hidden_features=8), "nre_a")
    estimator.save(tmp_path / "nre_a.pt")
    state_dict, hyperparameters = load_state(tmp_path / "nre_a.pt")
    save_state(tmp_path / "wider.pt", state_dict, {**hyperparameters, "hidden_features": 16})
    with pytest.raises(ArtifactError, match=r"wider\.pt: weights do not fit the recorded architecture"):
        load_estimator(tmp_path / "wider.pt")
    del hyperparameters["num_blocks"]
    save_state(tmp_path / "incomplete.pt", state_dict, hyperparameters)
    with pytest.raises(ArtifactError, match=r"incomplete\.pt: cannot rebuild the nre_a estimator: .*num_blocks"):
        load_estimator(tmp_path / "incomplete.pt")


# ---------------------------------------------------------------------- hostile input (issue 15)


@pytest.mark.parametrize("method", ["npe", "nle", "nre_a"])
def test_max_epochs_means_the_same_for_every_method(method: str):
    """sbi's own loop would train NPE and NLE one epoch more than asked."""
    theta, x = _simulate(200, seed=11)
    seed_everything(2)
    training = {**TRAINING, "hidden_features": 8, "num_transforms": 1, "batch_size": 100, "max_epochs": 2, "patience": 50}
    _, history = train_estimator(method, theta, x, PRIOR, {k: training[k] for k in method_spec(method).training_keys if k in training})
    assert history["epochs_trained"] == len(history["training_loss"]) == 2


def test_npe_sampling_refuses_a_non_finite_observation():
    posterior = _untrained_npe(BoxUniform(-torch.ones(DIM), torch.ones(DIM))).posterior({})
    with pytest.raises(SamplingError, match=r"NPE: 1 of 2 observations \(first: index 1\) hold NaN or inf"):
        posterior.sample(torch.tensor([[0.0, 0.0], [float("inf"), 0.2]]), 10)


def test_npe_sampling_stops_when_no_draw_lands_in_the_prior_support():
    """A prior far from every draw of the flow: rejection could never finish."""
    posterior = _untrained_npe(BoxUniform(torch.full((DIM,), 50.0), torch.full((DIM,), 51.0))).posterior({})
    with pytest.raises(SamplingError, match=r"NPE: only 0 of \d+ posterior draws for observation 0 lie inside "
                                            r"the prior's support .* rejection sampling cannot finish"):
        posterior.sample(torch.zeros(1, DIM), 10)


def test_each_flow_method_has_its_own_default_flow():
    """Without `flow`, NPE trains a neural spline flow and NLE a masked autoregressive flow (the
    better of the two measured on the sbibm tasks); a given `flow` is used as given."""
    theta, x = _simulate(200, seed=3)
    training = {key: TRAINING[key] for key in TRAINING if key != "flow"}
    training.update(hidden_features=8, num_transforms=1, max_epochs=2, batch_size=100)
    flows = {}
    for method in ("npe", "nle"):
        seed_everything(4)
        estimator, _ = train_estimator(method, theta, x, PRIOR, training)
        flows[method] = estimator.hyperparameters["flow"]
    assert flows == {"npe": "zuko_nsf", "nle": "zuko_maf"}
    estimator, _ = train_estimator("npe", theta, x, PRIOR, {**training, "flow": "zuko_maf"})
    assert estimator.hyperparameters["flow"] == "zuko_maf"


class _Captured(Exception):
    """Raised by a stand-in trainer once it has seen its settings."""


def test_each_method_has_its_own_patience_and_atoms(monkeypatch):
    """Without `patience` or `num_atoms`, NRE-B trains with 50 atoms and patience 50 (measured on
    two_moons, benchmarks/RESULTS.md), NRE-C with 10 atoms, every method else with patience 20;
    given values are used as given."""
    import sbi_core.estimators.training as training_module

    seen = {}

    def ratio(theta, x, loss, settings, device, seed):
        seen[loss] = settings
        raise _Captured

    def flow(method, theta, x, prior, settings, device):
        seen[method] = settings
        raise _Captured

    monkeypatch.setattr(training_module, "train_ratio_estimator", ratio)
    monkeypatch.setattr(training_module, "train_flow", flow)
    theta, x = _simulate(20, seed=5)
    training = {key: value for key, value in TRAINING.items() if key not in ("patience", "num_atoms")}
    for method in ("npe", "nle", "nre", "nre_a", "nre_c", "bnre"):
        with pytest.raises(_Captured):
            train_estimator(method, theta, x, PRIOR, training)
    assert {name: settings["patience"] for name, settings in seen.items()} == {
        "npe": 20, "nle": 20, "nre_b": 50, "nre_a": 20, "nre_c": 20, "bnre": 20}
    assert (seen["nre_b"]["num_atoms"], seen["nre_c"]["num_atoms"]) == (50, 10)
    with pytest.raises(_Captured):
        train_estimator("nre", theta, x, PRIOR, {**training, "patience": 7, "num_atoms": 4})
    assert (seen["nre_b"]["patience"], seen["nre_b"]["num_atoms"]) == (7, 4)
