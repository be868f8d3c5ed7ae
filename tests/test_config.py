"""Bad input is refused before any training starts, with the key or file named."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest

from sbi_core.config import load_config
from sbi_core.errors import ConfigError
from tests.conftest import validated


def test_valid_config_gets_defaults(tiny_analysis):
    tiny_analysis["training"] = {key: value for key, value in tiny_analysis["training"].items() if key != "flow"}
    analysis = validated(tiny_analysis)
    assert "flow" not in analysis["training"]  # each flow method's own default (registry)
    assert analysis["simulations"]["max_invalid_fraction"] == 0.1
    assert "thin" not in analysis["sampling"] and analysis["sampling"]["num_chains"] == 4  # thin: 3 d
    assert analysis["diagnostics"]["tarp"]["references"] == "uniform"


def _broken(analysis: dict, path: str, value) -> dict:
    broken = copy.deepcopy(analysis)
    *parents, leaf = path.split(".")
    node = broken
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return broken


_DELETE = object()


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("task", "gaussian_lineer", r"analyses\.demo\.task: 'gaussian_lineer' is not one of"),
        ("simulations.train", -5, r"analyses\.demo\.simulations\.train: -5 is less than the minimum of 1"),
        ("simulations.test", 0, r"analyses\.demo\.simulations\.test: 0 is less than the minimum of 1"),
        ("simulations.train", _DELETE, r"analyses\.demo\.simulations: 'train' is a required property"),
        ("simulations.shards", "two", r"analyses\.demo\.simulations\.shards: 'two' is not of type 'integer'"),
        ("training.learning_rate", "fast", r"analyses\.demo\.training\.learning_rate: 'fast' is not of type"),
        ("training.max_epochs", 0, r"analyses\.demo\.training\.max_epochs: 0 is less than the minimum"),
        ("methods", ["npe", "magic"], r"analyses\.demo\.methods\.1: 'magic' is not one of"),
        ("seed", 1.5, r"analyses\.demo\.seed: 1\.5 is not of type 'integer'"),
        ("observations", [], r"analyses\.demo\.observations: \[\] should be non-empty"),
        ("training.epochs", 10, r"analyses\.demo\.training: Additional properties are not allowed \('epochs'"),
        ("observations", [{"name": "..", "theta": [0.0] * 10}],
         r"analyses\.demo\.observations\.0\.name: '\.\.' does not match .*never `\.`, `\.\.` or a hidden name"),
        ("observations", [{"name": ".o1", "theta": [0.0] * 10}], r"analyses\.demo\.observations\.0\.name: '\.o1'"),
    ],
)
def test_schema_errors_name_the_key(tiny_analysis, path, value, message):
    with pytest.raises(ConfigError, match=message):
        validated(_broken(tiny_analysis, path, value))


def test_observation_theta_of_wrong_length(tiny_analysis):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.observations\[0\]\.theta: has 3 values, expected 10"):
        validated(_broken(tiny_analysis, "observations.0.theta", [0.0, 1.0, 2.0]))


def test_sbc_budget_larger_than_test_split(tiny_analysis):
    with pytest.raises(ConfigError, match=r"diagnostics\.num_simulations: 50 exceeds the 20 test"):
        validated(_broken(tiny_analysis, "diagnostics.num_simulations", 50))


def test_contrastive_atoms_beyond_the_validation_split_are_refused_before_training(tiny_analysis):
    """NRE-B's default 50 atoms need 500 simulations at validation fraction 0.1; NRE-C's 10 fewer."""
    training = {key: value for key, value in tiny_analysis["training"].items() if key != "num_atoms"}
    small = {**tiny_analysis, "methods": ["nre"], "simulations": {"train": 400, "test": 20, "shards": 2},
             "training": training}
    with pytest.raises(ConfigError, match=r"analyses\.demo\.training\.num_atoms: nre takes 50 atoms per observation "
                                          r"\(its default\) from each batch of 100 .* the 40 validation simulations"):
        validated(small)
    with pytest.raises(ConfigError, match=r"training\.num_atoms: nre takes 45 atoms .* expected at most 40"):
        validated({**small, "training": {**small["training"], "num_atoms": 45}})
    validated({**small, "training": {**small["training"], "num_atoms": 40}})
    validated({**small, "methods": ["nre_c", "nre_a", "bnre"]})
    validated({**tiny_analysis, "methods": ["nre"], "training": {**training, "batch_size": 200}})


def test_sir_cap_below_its_first_proposals(tiny_analysis):
    broken = _broken(tiny_analysis, "sampling", {"num_proposals": 5000, "max_proposals": 4000})
    with pytest.raises(ConfigError, match=r"analyses\.demo\.sampling\.max_proposals: 4000 is fewer than the first 5000"):
        validated(broken)


def _custom(simulator: str | None, prior: dict | None) -> dict:
    analysis = {
        "task": "custom",
        "parameter_names": ["mass", "width"],
        "simulations": {"train": 100, "test": 10},
        "methods": ["npe"],
        "observations": [{"name": "o1", "theta": [0.0, 0.0]}],
        "diagnostics": {"num_simulations": 10},
    }
    if simulator is not None:
        analysis["simulator"] = simulator
    if prior is not None:
        analysis["prior"] = prior
    return analysis


BOX = {"type": "box_uniform", "low": [-1, -1], "high": [1, 1]}


def test_custom_simulator_by_import_path(user_simulator):
    analysis = validated(_custom(user_simulator, BOX))
    assert analysis["task"] == "custom"


def test_simulator_that_does_not_import(user_simulator):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.simulator: .*nosuchmodule"):
        validated(_custom("nosuchmodule.sim:simulate", BOX))


def test_simulator_missing_function(user_simulator):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.simulator: .*usersim.*simulat0r"):
        validated(_custom("usersim:simulat0r", BOX))


def test_simulator_that_raises(user_simulator):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.simulator: the simulator failed.*detector offline"):
        validated(_custom("usersim:broken", BOX))


def test_simulator_path_of_wrong_form():
    with pytest.raises(ConfigError, match=r"analyses\.demo\.simulator: 'usersim\.simulate' does not match"):
        validated(_custom("usersim.simulate", BOX))


def test_box_prior_without_bounds(user_simulator):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.prior.*'low' and 'high'"):
        validated(_custom(user_simulator, {"type": "box_uniform"}))


def test_box_prior_with_inverted_bounds(user_simulator):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.prior"):
        validated(_custom(user_simulator, {"type": "box_uniform", "low": [1, 1], "high": [-1, 2]}))


def test_custom_task_without_prior(user_simulator):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.prior"):
        validated(_custom(user_simulator, None))


def test_custom_task_without_simulator_or_simulations():
    with pytest.raises(ConfigError, match=r"analyses\.demo\.simulator: task 'custom' needs a simulator"):
        validated(_custom(None, BOX))


def test_observation_file_of_wrong_shape(user_simulator, tmp_path):
    np.save(tmp_path / "x_o.npy", np.zeros(3, dtype=np.float32))
    analysis = _custom(user_simulator, BOX)
    analysis["observations"] = [{"name": "data", "file": str(tmp_path / "x_o.npy")}]
    with pytest.raises(ConfigError, match=r"observations\[0\]\.file: .*x_o\.npy holds an array of shape \(3,\), expected .*\(2,\)"):
        validated(analysis)


def test_observation_file_missing(user_simulator, tmp_path):
    analysis = _custom(user_simulator, BOX)
    analysis["observations"] = [{"name": "data", "file": str(tmp_path / "nothere.csv")}]
    with pytest.raises(ConfigError, match=r"observations\[0\]\.file: .*nothere\.csv: file not found"):
        validated(analysis)


def test_simulations_file_without_x(tmp_path):
    path = tmp_path / "sims.npz"
    np.savez(path, theta=np.zeros((10, 2)), data=np.zeros((10, 2)))
    analysis = _custom(None, BOX)
    analysis["simulations"] = {"train": str(path), "test": str(path)}
    analysis["observations"] = [{"name": "o", "file": str(tmp_path / "o.npy")}]
    np.save(tmp_path / "o.npy", np.zeros(2))
    with pytest.raises(ConfigError, match=r"simulations\.train: .*sims\.npz lacks array\(s\) \['x'\]"):
        validated(analysis)


def test_simulations_file_with_wrong_theta_dimension(tmp_path):
    path = tmp_path / "sims.npz"
    np.savez(path, theta=np.zeros((10, 3)), x=np.zeros((10, 2)))
    analysis = _custom(None, BOX)
    analysis["simulations"] = {"train": str(path), "test": str(path)}
    with pytest.raises(ConfigError, match=r"simulations\.train: .*'theta' has shape \(10, 3\), expected \[N, 2\]"):
        validated(analysis)


def test_simulations_file_that_is_not_npz(tmp_path):
    path = tmp_path / "sims.npz"
    path.write_text("not a zip")
    analysis = _custom(None, BOX)
    analysis["simulations"] = {"train": str(path), "test": 10}
    with pytest.raises(ConfigError, match=r"simulations\.train: .*sims\.npz: not a readable \.npz"):
        validated(analysis)


def test_duplicate_observation_names(tiny_analysis):
    analysis = copy.deepcopy(tiny_analysis)
    analysis["observations"] = analysis["observations"] * 2
    with pytest.raises(ConfigError, match=r"observations: names must be unique"):
        validated(analysis)


def _histfactory(**changes) -> dict:
    analysis = {
        "task": "histfactory",
        "histfactory": {"workspace": "config/workspaces/simple.json"},
        "simulations": {"train": 100, "test": 10},
        "methods": ["npe"],
        "observations": [{"name": "observed", "from_workspace": True}],
        "diagnostics": {"num_simulations": 10},
    }
    analysis.update(changes)
    return analysis


def test_histfactory_analysis_is_valid(monkeypatch, repo):
    monkeypatch.chdir(repo)
    analysis = validated(_histfactory())
    assert analysis["histfactory"]["data"] == "main" and analysis["upper_limit"]["level"] == 0.05


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"histfactory": {"workspace": "missing.json"}}, r"histfactory\.workspace: .*missing\.json"),
        ({"histfactory": {"workspace": "config/workspaces/simple.json", "parameters": ["uncorr_bkguncrt"]}},
         r"demo\.upper_limit: needs the POI 'mu'"),
        ({"histfactory": {"workspace": "config/workspaces/simple.json", "parameters": ["nope"]}},
         r"histfactory\.parameters\[0\]: .* has no parameter 'nope'"),
        ({"parameter_names": ["a", "b", "c"]}, r"demo\.parameter_names: a histfactory task takes"),
        ({"histfactory": {"workspace": "config/workspaces/simple.json", "data": "aux"}}, r"histfactory\.data"),
    ],
)
def test_bad_histfactory_config(monkeypatch, repo, changes, message):
    monkeypatch.chdir(repo)
    with pytest.raises(ConfigError, match=message):
        validated(_histfactory(**changes))


def test_workspace_observation_needs_a_histfactory_task(tiny_analysis):
    broken = copy.deepcopy(tiny_analysis)
    broken["observations"] = [{"name": "o", "from_workspace": True}]
    with pytest.raises(ConfigError, match=r"observations\[0\]\.from_workspace: only a histfactory task"):
        validated(broken)


def test_malformed_workspace_is_refused_with_pyhf_message(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"channels": [], "measurements": [], "version": "1.0.0"}')
    with pytest.raises(ConfigError, match=r"histfactory\.workspace: .*bad\.json"):
        validated(_histfactory(histfactory={"workspace": "bad.json"}))


@pytest.mark.parametrize("name", [".", "..", ".hidden", "../elsewhere", "a/b", ""])
def test_analysis_names_that_are_not_plain_path_components_are_refused(tiny_analysis, name):
    with pytest.raises(ConfigError, match=r"analyses: .* (does not match|should be non-empty).*plain path component"):
        validated(tiny_analysis, name=name)


# ---------------------------------------------------------------------- hostile input (issue 15)


@pytest.mark.parametrize(
    ("theta", "message"),
    [
        ([float("inf")] + [0.2] * 9, r"observations\[0\]\.theta: \[inf, 0\.2.*NaN or infinite values; expected finite"),
        ([float("nan")] * 10, r"observations\[0\]\.theta: \[nan.*NaN or infinite values"),
    ],
)
def test_observation_theta_that_is_not_finite(tiny_analysis, theta, message):
    with pytest.raises(ConfigError, match=message):
        validated(_broken(tiny_analysis, "observations.0.theta", theta))


def test_observation_theta_outside_the_prior_support(user_simulator):
    analysis = _custom(user_simulator, BOX)
    analysis["observations"] = [{"name": "o1", "theta": [0.0, 3.0]}]
    with pytest.raises(ConfigError, match=r"observations\[0\]\.theta: \[0\.0, 3\.0\] lies outside the prior's support"):
        validated(analysis)


def test_observation_file_holding_nan(user_simulator, tmp_path):
    np.save(tmp_path / "x_o.npy", np.array([0.1, np.nan], dtype=np.float32))
    analysis = _custom(user_simulator, BOX)
    analysis["observations"] = [{"name": "data", "file": str(tmp_path / "x_o.npy")}]
    with pytest.raises(ConfigError, match=r"observations\[0\]\.file: .*x_o\.npy: 1 of 2 values are NaN or inf; expected finite"):
        validated(analysis)


def test_observation_file_of_one_row_is_accepted(user_simulator, tmp_path):
    """sbi's and sbibm's convention for one observation: [1, *x_shape]."""
    np.savetxt(tmp_path / "x_o.csv", np.array([[0.1, -0.2]]), delimiter=",")
    np.save(tmp_path / "x_o.npy", np.zeros((1, 2), dtype=np.float32))
    analysis = _custom(user_simulator, BOX)
    analysis["observations"] = [{"name": "a", "file": str(tmp_path / "x_o.npy")},
                                {"name": "b", "file": str(tmp_path / "x_o.csv")}]
    validated(analysis)
    np.save(tmp_path / "x_o.npy", np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ConfigError, match=r"x_o\.npy holds an array of shape \(2, 2\), expected .*\(2,\) \(or \[1, 2\]"):
        validated(analysis)


def test_observation_with_both_theta_and_file(user_simulator):
    analysis = _custom(user_simulator, BOX)
    analysis["observations"] = [{"name": "o1", "theta": [0.0, 0.0], "file": "x_o.npy"}]
    with pytest.raises(ConfigError) as error:
        validated(analysis)
    assert str(error.value).startswith(
        "analyses.demo.observations.0: expected exactly one of theta | file | from_workspace; got file, theta"
    )
    analysis["observations"] = [{"name": "o1"}]
    with pytest.raises(ConfigError, match=r"observations\.0: expected exactly one of theta \| file \| from_workspace; got none"):
        validated(analysis)


def test_complex_simulations_file(tmp_path):
    path = tmp_path / "sims.npz"
    np.savez(path, theta=np.zeros((10, 2)), x=np.zeros((10, 2)) + 1j)
    analysis = _custom(None, BOX)
    analysis["simulations"] = {"train": str(path), "test": str(path)}
    with pytest.raises(ConfigError, match=r"simulations\.train: .*sims\.npz: 'x' holds complex128 values, expected real numbers"):
        validated(analysis)


def test_more_shards_than_simulations(tiny_analysis):
    broken = _broken(tiny_analysis, "simulations.shards", 400)
    with pytest.raises(ConfigError, match=r"simulations\.shards: 400 shards for 20 test simulations \(simulations\.test\) "
                                          r"would leave shards empty; expected at most 20"):
        validated(broken)


def test_cuda_on_a_machine_without_a_gpu(tiny_analysis):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ConfigError, match=r"analyses\.demo\.device: 'cuda' requested but this machine has no CUDA device"):
        validated(_broken(tiny_analysis, "device", "cuda"))


SIMULATORS = '''
import time

import torch

def per_batch(theta):
    """x of shape [N, N]: depends on the batch size."""
    return torch.zeros(len(theta), len(theta))

def never_returns(theta):
    while True:
        try:
            time.sleep(60)
        except Exception:  # a careless simulator's catch-all must not swallow the time limit
            pass
'''


@pytest.fixture
def hostile_simulators(tmp_path, monkeypatch) -> str:
    (tmp_path / "hostile.py").write_text(SIMULATORS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "hostile"


def test_simulator_whose_output_shape_depends_on_the_batch_size(hostile_simulators):
    with pytest.raises(ConfigError, match=r"analyses\.demo\.simulator: the shape of one x depends on the batch size: "
                                          r"\[2\] per row for 2 rows, \[1\] for 1 row"):
        validated(_custom("hostile:per_batch", BOX))


def test_simulator_that_never_returns_is_stopped_at_its_time_limit(hostile_simulators):
    analysis = _custom("hostile:never_returns", BOX)
    analysis["simulations"]["time_limit"] = 0.5
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"analyses\.demo\.simulator: the simulator failed on prior draws: .*"
                                          r"did not return within 0\.5 s on 2 rows \(simulations\.time_limit\)"):
        validated(analysis)
    assert time.monotonic() - start < 5


def test_time_limit_has_a_default(tiny_analysis):
    assert validated(tiny_analysis)["simulations"]["time_limit"] == 600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("analyses:\n  demo: {task: two_moons}\n  demo: {task: slcp}\n",
         r"c\.yaml, line 3: key 'demo' appears twice in one mapping \(first on line 2\)"),
        ("analyses:\n  demo:\n    methods: [npe]\n    task: two_moons\n    methods: [nre]\n",
         r"c\.yaml, line 5: key 'methods' appears twice in one mapping \(first on line 3\)"),
        ("analyses:\n  demo:\n    task: two_moons\n   seed: [1\n",
         r"c\.yaml, line 4, column 4: not valid YAML"),
    ],
)
def test_yaml_with_repeated_keys_or_bad_syntax_names_file_and_line(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    (tmp_path / "c.yaml").write_text("base: &base {seed: 1, task: two_moons}\nother:\n  <<: *base\n  seed: 2\n")
    assert load_config(tmp_path / "c.yaml")["other"] == {"seed": 2, "task": "two_moons"}
