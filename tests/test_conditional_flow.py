"""Flows rebuilt without sbi (`sbi_core.estimators.conditional_flow`) and NPE's rejection sampling
(`sbi_core.sampling.rejection`): the same numbers as sbi's, and jobs that load them import no sbi."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
import zuko
from sbi.samplers.rejection.rejection import accept_reject_sample

from sbi_core.estimators import NPEEstimator
from sbi_core.estimators.conditional_flow import FLOW_OPTIONS, build_conditional_flow
from sbi_core.estimators.flows import _builder, train_flow
from sbi_core.sampling.rejection import rejection_sample
from sbi_core.tasks.box import BoxUniform
from tests.conftest import imports_sympy

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def _schema_flows() -> list[str]:
    text = SCHEMA.read_text()
    schema = yaml.safe_load(text)
    found = []

    def visit(node: object) -> None:
        if isinstance(node, dict):
            flow = node.get("flow")
            if isinstance(flow, dict) and "enum" in flow:
                found.extend(flow["enum"])
            for child in node.values():
                visit(child)
        elif isinstance(node, list):
            for child in node:
                visit(child)

    visit(schema)
    return sorted(set(found))


def test_every_flow_the_schema_offers_is_rebuilt():
    assert _schema_flows() == sorted(FLOW_OPTIONS)


@pytest.mark.parametrize("method", ["npe", "nle"])
@pytest.mark.parametrize("flow", sorted(FLOW_OPTIONS))
def test_rebuilt_flow_takes_sbis_weights_and_gives_its_numbers(flow, method):
    hyperparameters = {"method": method, "flow": flow, "hidden_features": 8, "num_transforms": 2,
                       "num_bins": 5, "dim_theta": 2, "x_shape": [3]}
    generator = torch.Generator().manual_seed(0)
    theta, x = torch.randn(64, 2, generator=generator) * 3 + 1, torch.randn(64, 3, generator=generator) - 2
    torch.manual_seed(0)
    # sbi's builder z-scores from the batch, so the buffers loaded below are not the placeholders.
    theirs = _builder(hyperparameters)(theta, x)
    ours = build_conditional_flow(hyperparameters)
    theirs_state, ours_state = theirs.state_dict(), ours.state_dict()
    assert list(ours_state) == list(theirs_state)
    assert all(ours_state[key].shape == theirs_state[key].shape for key in theirs_state)
    ours.load_state_dict(theirs_state)

    inputs, conditions = (theta, x) if method == "npe" else (x, theta)
    sample_input, condition = inputs[:20].reshape(4, 5, -1), conditions[:5]
    assert torch.equal(ours.log_prob(sample_input, condition=condition), theirs.log_prob(sample_input, condition=condition))
    torch.manual_seed(1)
    expected = theirs.sample((7,), condition=condition)
    torch.manual_seed(1)
    assert torch.equal(ours.sample((7,), condition=condition), expected)
    torch.manual_seed(1)
    expected, _ = theirs.sample_and_log_prob((7,), condition=condition)
    torch.manual_seed(1)
    assert torch.equal(ours.rsample((7,), condition=condition), expected)


@pytest.mark.parametrize("x_shape", [[3], [1]])
def test_maf_log_density_skips_zukos_lazy_transforms_and_keeps_its_numbers(x_shape, monkeypatch):
    """NLE's default flow (MAF, affine steps) is evaluated without zuko's lazy transforms, to the
    last bit of what zuko gives; a MAF on one feature (zuko makes it element-wise) goes through zuko."""
    hyperparameters = {"method": "nle", "flow": "zuko_maf", "hidden_features": 8, "num_transforms": 3,
                       "num_bins": 5, "dim_theta": 2, "x_shape": x_shape}
    torch.manual_seed(3)
    flow = build_conditional_flow(hyperparameters)
    with torch.no_grad():  # weights and z-scoring away from their initial values
        for parameter in flow.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
        for buffer in flow.buffers():
            if buffer.dtype.is_floating_point:
                buffer.add_(0.5 * torch.rand_like(buffer))
    x, theta = torch.randn(6, 4, x_shape[0]), torch.randn(4, 2)
    context = flow._embedding_net(theta).expand(6, 4, 2)
    zukos = flow.net(context).log_prob(x)
    assert torch.equal(flow.log_prob(x, condition=theta), zukos)

    calls = []  # zuko's lazy flow builds its transforms and base distribution in Flow.forward
    forward = zuko.flows.Flow.forward
    monkeypatch.setattr(zuko.flows.Flow, "forward", lambda *args: calls.append(1) or forward(*args))
    assert torch.equal(flow.log_prob(x, condition=theta), zukos)
    assert (calls == []) == (x_shape[0] > 1)


def test_nle_log_likelihood_imports_no_sympy():
    """zuko's broadcasting calls torch.broadcast_shapes, whose first call imports sympy (0.3-0.45 s of
    an NLE sampling job); the MAF's own evaluation does without it."""
    assert not imports_sympy("""
        import torch
        from sbi_core.estimators import NLEEstimator
        estimator = NLEEstimator.from_hyperparameters({"method": "nle", "flow": "zuko_maf", "hidden_features": 8,
            "num_transforms": 2, "num_bins": 8, "dim_theta": 2, "x_shape": [3]})
        estimator.log_ratio(torch.randn(5, 2), torch.randn(4, 3))
    """)


@pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")  # two epochs are enough here
def test_train_flow_returns_the_rebuilt_flow_with_the_trained_weights_and_leaves_the_stream():
    generator = torch.Generator().manual_seed(2)
    theta = torch.rand(300, 2, generator=generator)
    x = theta + 0.1 * torch.randn(300, 2, generator=generator)
    training = {"flow": "zuko_maf", "hidden_features": 8, "num_transforms": 1, "num_bins": 8, "batch_size": 100,
                "learning_rate": 1e-3, "max_epochs": 2, "patience": 5, "validation_fraction": 0.1}
    torch.manual_seed(0)
    network, hyperparameters, _ = train_flow("npe", theta, x, BoxUniform(torch.zeros(2), torch.ones(2)), training)
    after = torch.rand(3)
    rebuilt = build_conditional_flow(hyperparameters)
    rebuilt.load_state_dict(network.state_dict())
    assert type(network) is type(rebuilt)
    assert network.state_dict()["_embedding_net.0._mean"].abs().sum() > 0  # sbi's z-scoring, not the placeholder
    assert torch.equal(rebuilt.log_prob(theta[:10], condition=x[:10]), network.log_prob(theta[:10], condition=x[:10]))
    # The rebuild's throw-away initial weights come from a forked stream: the caller's draws are as
    # if training alone had drawn (a second ensemble member trains from the same state either way).
    torch.manual_seed(0)
    sbi_network = _train_with_sbi_alone(theta, x, training)
    assert torch.equal(torch.rand(3), after)
    key = "net.transform.transforms.1.hyper.0.weight"
    assert torch.equal(sbi_network.state_dict()[key], network.state_dict()[key])


def _train_with_sbi_alone(theta, x, training):
    from sbi.inference import NPE

    from sbi_core.estimators.flows import NullTracker

    hyperparameters = {"method": "npe", "flow": training["flow"], "hidden_features": training["hidden_features"],
                       "num_transforms": training["num_transforms"], "num_bins": training["num_bins"]}
    trainer = NPE(prior=BoxUniform(torch.zeros(2), torch.ones(2)), density_estimator=_builder(hyperparameters),
                  show_progress_bars=False, tracker=NullTracker())
    trainer.append_simulations(theta, x)
    return trainer.train(training_batch_size=training["batch_size"], learning_rate=training["learning_rate"],
                         validation_fraction=training["validation_fraction"],
                         stop_after_epochs=training["patience"], max_num_epochs=training["max_epochs"] - 1)


@pytest.mark.parametrize("max_batch_size", [10_000, 150])
def test_rejection_sampling_draws_sbis_samples(max_batch_size):
    centres = torch.tensor([0.0, -0.5, 1.0])

    def proposal(sample_shape, condition):
        return condition[None, :, None] + torch.randn(*sample_shape, len(condition), 2)

    def accept(theta):  # acceptance from 10% to 70% across the observations
        return (theta > -0.3).all(-1)

    torch.manual_seed(3)
    expected, _ = accept_reject_sample(proposal, accept, 700, max_sampling_batch_size=max_batch_size,
                                       proposal_sampling_kwargs={"condition": centres})
    expected_state = torch.get_rng_state()
    torch.manual_seed(3)
    samples = rejection_sample(lambda n: proposal((n,), centres), accept, 700, max_batch_size=max_batch_size)
    assert torch.equal(samples, expected)
    assert torch.equal(torch.get_rng_state(), expected_state)  # the same batches were drawn
    assert bool(accept(samples).all())


def test_rejection_sampling_keeps_the_first_accepted_draws_in_order():
    draws = iter([torch.tensor([[[1.0], [-1.0]], [[-2.0], [3.0]], [[4.0], [5.0]]]),
                  torch.tensor([[[6.0], [7.0]]] * 100)])
    samples = rejection_sample(lambda n: next(draws), lambda theta: theta[..., 0] > 0, 3)
    assert samples[:, :, 0].T.tolist() == [[1.0, 4.0, 6.0], [3.0, 5.0, 7.0]]


_FRESH_PROCESS = """
import sys, torch
from sbi_core.estimators import load_estimator
from sbi_core.tasks import build_task
task = build_task({"task": "gaussian_linear"}, "test")
estimator = load_estimator(sys.argv[1], prior=task.prior)
posterior = estimator.posterior({})
samples = posterior.sample(torch.zeros(2, 10), 50)
assert samples.shape == (2, 50, 10), samples.shape
assert posterior.log_density(samples, torch.zeros(2, 10)).isfinite().all()
print(sorted({name.split(".")[0] for name in sys.modules} & {"sbi", "scipy", "sklearn", "matplotlib"}))

"""


def test_a_saved_npe_loads_and_samples_in_a_fresh_process_without_importing_sbi(tmp_path):
    hyperparameters = {"method": "npe", "flow": "zuko_nsf", "hidden_features": 8, "num_transforms": 2,
                       "num_bins": 4, "dim_theta": 10, "x_shape": [10]}
    torch.manual_seed(0)
    NPEEstimator.from_hyperparameters(hyperparameters).save(tmp_path / "npe.pt")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(_FRESH_PROCESS), str(tmp_path / "npe.pt")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
