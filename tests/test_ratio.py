"""The ratio core: losses against per-pair loops and sbi, the all-pairs network, training, accuracy."""

from __future__ import annotations

import math

import pytest
import torch
from sbi.inference import BNRE, NRE_A, NRE_B, NRE_C
from sbi.utils import BoxUniform
from torch import nn
from torch.distributions import MultivariateNormal

from sbi_core.errors import ArtifactError, ConfigError
from sbi_core.estimators import NREEstimator, load_estimator
from sbi_core.estimators.flows import NullTracker
from sbi_core.ratio import (
    LOSSES,
    RatioEstimator,
    build_loss,
    default_settings,
    draw_atoms,
    train_ratio_estimator,
)
from sbi_core.sampling import RatioPosterior

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
GAMMA, LAMBDA = 0.7, 50.0
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: small networks, one torch thread


def _loss(name: str, num_atoms: int = 4):
    return build_loss(name, num_atoms=num_atoms, gamma=GAMMA, regularization_strength=LAMBDA)


# ---------------------------------------------------------------------- atoms


def test_atoms_are_the_joint_pair_then_distinct_marginal_pairs():
    atoms = draw_atoms(6, 4, torch.Generator().manual_seed(0))
    assert atoms.shape == (6, 4) and atoms.dtype == torch.int64
    assert atoms[:, 0].tolist() == list(range(6))
    assert (atoms[:, 1:] != torch.arange(6)[:, None]).all()
    assert all(len(set(row)) == 4 for row in atoms.tolist())
    assert torch.equal(atoms, draw_atoms(6, 4, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="num_atoms"):
        draw_atoms(3, 4)


def test_atoms_are_uniform_over_the_other_rows():
    """Each other parameter is a marginal atom with probability (K - 1) / (B - 1) = 1/2."""
    generator = torch.Generator().manual_seed(1)
    counts = torch.zeros(5, 5)
    for _ in range(2000):
        atoms = draw_atoms(5, 3, generator)
        counts[torch.arange(5)[:, None], atoms[:, 1:]] += 1
    frequency = counts / 2000
    assert frequency.diagonal().eq(0).all()
    off_diagonal = frequency[~torch.eye(5, dtype=torch.bool)]
    assert (off_diagonal - 0.5).abs().max() < 0.05


# ---------------------------------------------------------------------- losses against loops


def _naive(name: str, logits: torch.Tensor, atoms: torch.Tensor) -> float:
    """The loss pair by pair in plain Python floats (float64)."""
    logit = [[float(v) for v in row] for row in logits.cpu()]
    batch = len(logit)

    def f(j: int, k: int) -> float:  # the k-th atom of observation j
        return logit[int(atoms[j, k])][j]

    def sigmoid(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    total = 0.0
    balance = 0.0
    for j in range(batch):
        if name in ("nre_a", "bnre"):
            total -= (math.log(sigmoid(f(j, 0))) + math.log(1 - sigmoid(f(j, 1)))) / (2 * batch)
            balance += (sigmoid(f(j, 0)) + sigmoid(f(j, 1))) / batch
        elif name == "nre_b":
            total -= (f(j, 0) - math.log(sum(math.exp(f(j, k)) for k in range(atoms.shape[1])))) / batch
        else:  # nre_c, K classes: joint set atoms 0..K-1, marginal set 1..K
            k_classes = atoms.shape[1] - 1
            marginal = sum(math.exp(f(j, k)) for k in range(1, k_classes + 1))
            joint = sum(math.exp(f(j, k)) for k in range(k_classes))
            log_p_marginal = math.log(k_classes) - math.log(k_classes + GAMMA * marginal)
            log_p_joint = math.log(GAMMA) + f(j, 0) - math.log(k_classes + GAMMA * joint)
            total -= (log_p_marginal / (1 + GAMMA) + GAMMA / (1 + GAMMA) * log_p_joint) / batch
    if name == "bnre":
        total += LAMBDA * (balance - 1) ** 2
    return total


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", LOSSES)
def test_loss_equals_a_per_pair_loop(name: str, device: str):
    generator = torch.Generator().manual_seed(2)
    loss = _loss(name)
    for batch in (5, 8):
        logits = (2 * torch.randn(batch, batch, generator=generator)).to(device)
        atoms = loss.atoms(batch, generator)
        assert atoms.shape == (batch, loss.num_atoms)
        value = loss(logits, atoms)
        assert value.shape == () and value.device.type == device
        assert value.item() == pytest.approx(_naive(name, logits, atoms), abs=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_equals_sbi_on_the_same_atoms(name: str):
    """sbi 0.27's own `_loss`, fed our atoms' logits in place of its random choices."""
    generator = torch.Generator().manual_seed(3)
    batch, loss = 6, _loss(name, num_atoms=4)
    logits = 2 * torch.randn(batch, batch, generator=generator)
    atoms = loss.atoms(batch, generator)
    atom_logits = logits.T.gather(1, atoms)
    trainer_class = {"nre_a": NRE_A, "nre_b": NRE_B, "nre_c": NRE_C, "bnre": BNRE}[name]
    trainer = trainer_class(prior=BoxUniform(-torch.ones(2), torch.ones(2)), tracker=NullTracker(),
                            show_progress_bars=False)
    # sbi asks for rows of `num_atoms` logits per x, joint first; NRE-C asks for
    # K + 1 (marginal set, its first dropped) and then K (joint set).
    trainer._classifier_logits = lambda theta, x, num_atoms: atom_logits[:, :num_atoms].reshape(-1, 1)
    theta, x = torch.zeros(batch, 2), torch.zeros(batch, 2)
    arguments = {"nre_a": (2,), "nre_b": (4,), "nre_c": (4, GAMMA), "bnre": (2, LAMBDA)}[name]
    expected = trainer._loss(theta, x, *arguments)
    assert loss(logits, atoms).item() == pytest.approx(expected.item(), abs=1e-5)


# ---------------------------------------------------------------------- network


class _Embedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x.flatten(1)))


def _network(embedding: bool, activation: str = "relu") -> RatioEstimator:
    torch.manual_seed(4)
    network = RatioEstimator(
        dim_theta=3, x_shape=[2, 3], hidden_features=16, num_blocks=2, activation=activation,
        embedding_net=_Embedding() if embedding else None,
    )
    # Non-trivial z-scoring and weights, so the checks see every part of the network.
    network.fit_standardization(torch.randn(50, 3) * 2 + 1, torch.randn(50, 2, 3) * 3 - 1)
    for block in network.blocks:
        nn.init.normal_(block.linear_2.weight, std=0.3)
    return network


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("embedding", [False, True])
@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_all_pairs_equals_forward_on_every_pair(embedding: bool, activation: str, device: str):
    network = _network(embedding, activation).to(device)
    theta, x = torch.randn(5, 3, device=device), torch.randn(4, 2, 3, device=device)
    matrix = network.all_pairs(theta, x)
    assert matrix.shape == (5, 4)
    pairwise = network(theta.repeat_interleave(4, dim=0), x.repeat(5, 1, 1)).reshape(5, 4)
    torch.testing.assert_close(matrix, pairwise, atol=1e-6, rtol=1e-5)
    # C = 5 parameters for each of the M = 4 observations.
    grouped = network.per_observation(theta.T[None].expand(4, 3, 5).transpose(1, 2), x)
    torch.testing.assert_close(grouped, matrix.T, atol=1e-6, rtol=1e-5)


def test_network_refuses_wrong_shapes():
    network = _network(False)
    with pytest.raises(ValueError, match="theta"):
        network.all_pairs(torch.randn(5, 2), torch.randn(4, 2, 3))
    with pytest.raises(ValueError, match="x: expected shape"):
        network.all_pairs(torch.randn(5, 3), torch.randn(4, 6))
    with pytest.raises(ValueError, match="as many rows"):
        network(torch.randn(5, 3), torch.randn(4, 2, 3))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", LOSSES)
def test_gradients_reach_every_parameter(name: str, device: str):
    network = _network(True).to(device)
    theta, x = torch.randn(8, 3, device=device), torch.randn(8, 2, 3, device=device)
    loss = _loss(name)
    loss(network.all_pairs(theta, x), loss.atoms(8, torch.Generator().manual_seed(5))).backward()
    for parameter_name, parameter in network.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize("embedding", [False, True])
def test_save_load_round_trip_gives_identical_logits(tmp_path, embedding: bool):
    """Through the one estimator artifact (sbi_core.estimators): an embedding net is passed again."""
    network = _network(embedding).eval()
    path = tmp_path / "nre.pt"
    NREEstimator.from_network(network, "nre").save(path)
    torch.manual_seed(99)  # a rebuilt network starts from other weights
    loaded = load_estimator(path, embedding_net=_Embedding() if embedding else None)
    assert isinstance(loaded.network, RatioEstimator)
    assert loaded.hyperparameters["loss"] == "nre_b" and loaded.hyperparameters["x_shape"] == [2, 3]
    theta, x = torch.randn(6, 3), torch.randn(5, 2, 3)
    assert torch.equal(loaded.network.all_pairs(theta, x), network.all_pairs(theta, x))
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"state_dict", "hyperparameters"}


def test_load_refuses_foreign_or_incomplete_files(tmp_path):
    network = _network(True)
    NREEstimator.from_network(network, "nre").save(tmp_path / "with_embedding.pt")
    with pytest.raises(ArtifactError, match=r"with_embedding\.pt: .*embedding"):
        load_estimator(tmp_path / "with_embedding.pt")
    with pytest.raises(ArtifactError, match="estimator"):
        RatioEstimator.from_hyperparameters({"method": "npe"})
    hyperparameters = _network(False).hyperparameters
    del hyperparameters["num_blocks"]
    with pytest.raises(ArtifactError, match="num_blocks"):
        RatioEstimator.from_hyperparameters(hyperparameters)


# ---------------------------------------------------------------------- training


def _gaussian_linear(num_simulations: int, seed: int, dim: int = 2):
    """The Gaussian-linear task in `dim` dimensions: exact posterior N(x / 2, 0.05 I)."""
    prior = MultivariateNormal(torch.zeros(dim), 0.1 * torch.eye(dim))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        theta = prior.sample((num_simulations,))
        x = theta + 0.1**0.5 * torch.randn_like(theta)
    return prior, theta, x


SMALL = {"batch_size": 50, "max_epochs": 3, "num_atoms": 5, "hidden_features": 16}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", LOSSES)
def test_training_is_reproducible_and_reports_its_history(name: str, device: str):
    _, theta, x = _gaussian_linear(400, seed=6)
    runs = [train_ratio_estimator(theta, x, name, SMALL, device=device, seed=7, show_progress_bar=False)
            for _ in range(2)]
    (first, history), (second, _) = runs
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert history["epochs_trained"] == len(history["training_loss"]) == len(history["validation_loss"]) == 3
    assert history["best_validation_loss"] == min(history["validation_loss"])
    assert history["validation_loss"][-1] < history["validation_loss"][0]
    assert not first.training and next(first.parameters()).device.type == device


def test_early_stopping_keeps_the_best_weights():
    _, theta, x = _gaussian_linear(400, seed=8)
    settings = {**SMALL, "max_epochs": 200, "patience": 2, "learning_rate": 0.05}
    network, history = train_ratio_estimator(theta, x, "nre_b", settings, seed=9, show_progress_bar=False)
    losses, best = history["validation_loss"], history["best_validation_loss"]
    assert history["epochs_trained"] < 200
    assert losses.index(best) == history["epochs_trained"] - 1 - 2
    assert all(value >= best for value in losses[-2:])


@pytest.mark.parametrize("name", LOSSES)
def test_a_direct_call_trains_with_the_workflows_defaults(name: str, monkeypatch):
    """A library call without settings trains as a workflow config that sets none: the schema's
    defaults and the method's own (NRE-B: 50 atoms, patience 50), not a second set of numbers."""
    from pathlib import Path

    import sbi_core.ratio.training as training_module
    from sbi_core.estimators.registry import REGISTRY
    from sbi_core.schema import check_schema

    method = next(spec for spec in REGISTRY.values() if spec.loss == name)
    analysis = {"task": "gaussian_linear", "seed": 1, "simulations": {"train": 10, "test": 10}, "methods": [method.name],
                "observations": [{"name": "o", "theta": [0.0] * 10}]}
    schema = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
    workflow = {**check_schema({"analyses": {"a": analysis}}, schema)["analyses"]["a"]["training"],
                **dict(method.training_defaults)}
    library = default_settings(name)
    for key in set(method.training_keys) & set(library):
        assert library[key] == workflow[key], key
    assert (library["num_atoms"], library["patience"]) == ((50, 50) if name == "nre_b" else (10, 20))

    seen = {}

    def capture(loss, num_atoms, gamma, regularization_strength):
        seen["num_atoms"] = num_atoms
        raise RuntimeError("captured")

    monkeypatch.setattr(training_module, "build_loss", capture)
    _, theta, x = _gaussian_linear(400, seed=10)
    with pytest.raises(RuntimeError, match="captured"):
        train_ratio_estimator(theta, x, name, seed=0, show_progress_bar=False)
    assert seen["num_atoms"] == library["num_atoms"]


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"batch_sise": 10}, "settings.batch_sise"),
        ({"num_atoms": 60}, "settings.num_atoms"),
        ({"learning_rate": -1.0}, "settings.learning_rate"),
        ({"validation_fraction": 0.001}, "settings.validation_fraction"),
    ],
)
def test_bad_settings_are_refused_by_key(settings: dict, match: str):
    _, theta, x = _gaussian_linear(400, seed=10)
    with pytest.raises(ConfigError, match=match):
        train_ratio_estimator(theta, x, "nre_b", {**SMALL, **settings}, seed=0, show_progress_bar=False)
    with pytest.raises(ConfigError, match="loss"):
        train_ratio_estimator(theta, x, "nre_z", SMALL, seed=0, show_progress_bar=False)


# ---------------------------------------------------------------------- accuracy


@pytest.fixture(scope="module")
def gaussian_linear_nre_b():
    prior, theta, x = _gaussian_linear(3000, seed=11)
    settings = {"batch_size": 100, "learning_rate": 1e-3, "max_epochs": 60, "patience": 10,
                "hidden_features": 32, "num_atoms": 10}
    network, history = train_ratio_estimator(theta, x, "nre_b", settings, seed=12, show_progress_bar=False)
    return prior, network, history


X_O = torch.tensor([[0.6, -0.4], [0.0, 0.3], [-0.5, -0.5]])


def _posterior_error(samples: torch.Tensor, x_o: torch.Tensor) -> tuple[float, float, float]:
    """Largest mean error, variance ratio's distance from 1, off-diagonal covariance (exact: N(x/2, 0.05 I))."""
    mean_error = (samples.mean(1) - x_o / 2).abs().max().item()
    variance_error = (samples.var(1) / 0.05 - 1).abs().max().item()
    covariance = torch.stack([torch.cov(s.T) for s in samples])
    return mean_error, variance_error, covariance[:, 0, 1].abs().max().item()


def _matches_exact(samples: torch.Tensor, x_o: torch.Tensor) -> bool:
    """Means within 0.1 (posterior std 0.22), variances within 35%, covariances below 0.015.

    An estimator that ignores x gives the prior N(0, 0.1 I): mean errors up to 0.3
    here and variances off by 100%.
    """
    mean_error, variance_error, covariance = _posterior_error(samples, x_o)
    return mean_error < 0.1 and variance_error < 0.35 and covariance < 0.015


@pytest.mark.parametrize("method", ["sir", "mcmc"])
def test_nre_b_matches_the_exact_gaussian_linear_posterior(gaussian_linear_nre_b, method: str):
    prior, network, history = gaussian_linear_nre_b
    options = {"num_proposals": 50_000} if method == "sir" else {"num_chains": 50}
    samples = RatioPosterior(network, prior).sample(X_O, 2000, method=method, seed=13, **options)
    assert samples.shape == (3, 2000, 2)
    assert _matches_exact(samples, X_O), _posterior_error(samples, X_O)
    assert history["epochs_trained"] >= 10


def test_an_estimator_ignoring_x_fails_the_accuracy_check(gaussian_linear_nre_b):
    prior, network, _ = gaussian_linear_nre_b
    broken = RatioEstimator.from_hyperparameters(network.hyperparameters)
    broken.load_state_dict(network.state_dict())
    with torch.no_grad():
        broken.x_layer.weight.zero_()
    samples = RatioPosterior(broken, prior).sample(X_O, 2000, num_proposals=50_000, seed=13)
    assert not _matches_exact(samples, X_O)
    assert not _matches_exact(prior.sample((3, 2000)), X_O)
