"""The design stage in the workflow: a tiny design end to end, what a settings edit reruns, and bad
design input refused before any job runs, naming the key."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sbi_core.config import validate_config
from sbi_core.design import build_design_task, design_task, likelihood_eig
from sbi_core.errors import ConfigError
from tests.conftest import SCHEMA, TINY_TRAINING, snakemake_in

DESIGN = {
    "activate": True,
    "task": "linear_gaussian",
    "num_experiments": 2,
    "methods": ["spce", "nre"],
    "simulations": 1000,
    "training": {"max_epochs": 5},
    "num_outer": 64,
    "num_inner": 64,
    "num_contrastive": 32,
    "candidates": 5,
    "optimiser": {"starts": 4, "steps": 10, "num_outer": 32, "num_inner": 32},
    "reestimate": {"num_outer": 2000, "num_inner": 500},
}
ANALYSIS = {
    "task": "gaussian_smearing",
    "seed": 4,
    "simulations": {"train": 200, "test": 30},
    "methods": ["nre"],
    "observations": [{"name": "o1", "theta": [1.0]}],
    "training": dict(TINY_TRAINING),
    "diagnostics": {"num_simulations": 30},
    "design": DESIGN,
}


def _write(folder: Path, design: dict) -> None:
    """A design-only analysis: the design block and a seed, none of the inference keys."""
    (folder / "config.yaml").write_text(yaml.safe_dump({"analyses": {"des": {"seed": 4, "design": copy.deepcopy(design)}}}))


@pytest.fixture(scope="module")
def design_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("design")
    _write(folder, DESIGN)
    result = snakemake_in(folder)
    assert result.returncode == 0, result.stderr[-4000:]
    return folder


def test_the_design_stage_writes_its_artifacts(design_run):
    prefix = design_run / "results/des/design"
    with open(prefix / "eig.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["design", "xi_1", "xi_2", "method", "eig", "stderr"]
    assert len(rows) == 25 * 2 and {r["method"] for r in rows} == {"spce", "nre_infonce"}
    assert all(float(r["stderr"]) > 0 for r in rows)
    best = json.loads((prefix / "best_design.json").read_text())
    assert set(best["methods"]) == {"spce", "nre"}
    for record in best["methods"].values():
        design = np.asarray(record["best_design"])
        assert design.shape == (2, 1) and np.all(np.abs(design) <= 1)
        assert record["reestimated_by"] == "spce" and record["best_eig_stderr"] > 0
        # the best candidate and the ascent's winner were re-estimated side by side; the higher won
        assert set(record["reestimates"]) == {"candidates", "ascent"}
        assert record["best_eig"] == max(record["reestimates"].values())
        assert record["best_eig"] == record["reestimates"][record["best_from"]]
        # the re-estimate on fresh simulations agrees with the exact EIG of the design it chose
        assert abs(record["best_eig"] - record["exact_eig_of_best"]) < 4 * record["best_eig_stderr"] + 0.02
    assert best["best"]["best_eig"] == max(r["best_eig"] for r in best["methods"].values())
    with np.load(prefix / "ascent.npz") as ascent:
        assert ascent["spce_paths"].shape == (11, 4, 2, 1) and ascent["nre_values"].shape == (10, 4)
    assert (prefix / "eig.png").stat().st_size > 10_000
    state = torch.load(prefix / "estimators/nre.pt", weights_only=True)
    assert json.loads(state["hyperparameters"])["x_shape"] == [4]  # two outcomes and their two designs


def test_a_design_only_analysis_reports_its_design_and_nothing_else(design_run):
    """No simulations, estimators or calibration were made, and the report does not pretend there were."""
    results = design_run / "results/des"
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == ["benchmarks", "design", "logs"]
    summary = json.loads((results / "summary.json").read_text())
    assert summary["task"] == "design of linear_gaussian" and summary["methods"] == {} and summary["simulations"] == {}
    best = json.loads((results / "design/best_design.json").read_text())
    assert summary["design"]["best"] == best["best"]
    report = (results / "report.html").read_text()
    assert "Experimental design (linear_gaussian, T = 2)" in report
    assert "Calibration verdicts" not in report and "Time per method" not in report


def test_a_candidate_setting_reruns_the_design_step_only(design_run):
    _write(design_run, {**DESIGN, "candidates": 7})
    try:
        dry = snakemake_in(design_run, "-n")
        assert dry.returncode == 0, dry.stderr[-3000:]
        jobs = dry.stdout + dry.stderr
        assert "rule design:" in jobs and "rule report:" in jobs and "rule design_train:" not in jobs
    finally:
        _write(design_run, DESIGN)


USER_DESIGN = '''
import torch

def line(theta, design):
    """The built-in line, as a user would write it: y = theta_1 + theta_2 xi + N(0, 1)."""
    mean = theta[:, None, 0] + theta[:, None, 1] * design[..., 0]
    return mean + torch.randn_like(mean)

def line_log_likelihood(theta, x, design):
    mean = theta[..., None, 0] + theta[..., None, 1] * design[..., 0]
    return torch.distributions.Normal(mean, 1.0).log_prob(x).sum(-1)

def wrong_shape(theta, design):
    return torch.zeros(len(theta), 3)
'''


@pytest.fixture
def user_design(tmp_path, monkeypatch) -> dict:
    (tmp_path / "userdesign.py").write_text(USER_DESIGN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return {**DESIGN, "task": "custom", "simulator": "userdesign:line", "log_likelihood": "userdesign:line_log_likelihood",
            "prior": {"type": "gaussian", "mean": [0, 0], "std": [1, 1]}, "differentiable": True,
            "space": {"low": [-1.0], "high": [1.0], "names": ["position"]}}


def test_a_user_simulator_with_a_design_gives_the_exact_eig(user_design):
    """Your simulator and likelihood by import path: sPCE on it matches the exact EIG of the same line."""
    config = validate_config({"analyses": {"des": {**copy.deepcopy(ANALYSIS), "design": user_design}}}, SCHEMA)
    task = build_design_task(config["analyses"]["des"]["design"], "analyses.des.design")
    assert task.name == "custom" and task.space.names == ("position",) and task.differentiable
    designs = torch.tensor([[[-1.0], [1.0]], [[0.0], [0.5]]])
    torch.manual_seed(0)
    estimate = likelihood_eig(task, designs, 4000, 1000)
    exact = design_task("linear_gaussian", 2).exact_eig(designs)
    assert torch.all((estimate.eig - exact).abs() < 3 * estimate.stderr + 0.01), (estimate.eig, exact)


@pytest.mark.parametrize(("change", "message"), [
    ({"simulator": "userdesign:wrong_shape"},
     r"design\.simulator: returned shape \[2, 3\] .* expected \[2, 2\] \(one outcome per experiment\)"),
    ({"prior": None}, r"analyses\.des\.design\.prior: required for task: custom"),
    ({"simulator": "userdesign:nowhere"}, r"analyses\.des\.design\.simulator"),
    ({"log_likelihood": None, "methods": ["spce"]}, r"design\.methods: spce needs the simulator's likelihood"),
])
def test_a_bad_user_design_is_refused_naming_the_key(user_design, change, message):
    design = {k: v for k, v in {**user_design, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        validate_config({"analyses": {"des": {**copy.deepcopy(ANALYSIS), "design": design}}}, SCHEMA)


@pytest.mark.parametrize(("change", "message"), [
    ({"space": {"low": [1.0], "high": [-1.0]}}, r"analyses\.des\.design\.space: low must be below high"),
    ({"space": {"low": [0.0, 0.0], "high": [1.0, 1.0]}}, r"analyses\.des\.design\.space: linear_gaussian has 1 design variable"),
    ({"training": {"max_epoch": 5}}, r"analyses\.des\.design\.training\.max_epoch: not a training key"),
    ({"methods": ["nre"], "num_outer": 64, "num_contrastive": 128}, r"analyses\.des\.design\.num_outer: 64 joint draws"),
    ({"task": "location"}, r"analyses\.des\.design\.task: 'location' is not one of"),
    ({"simulator": "m:f"}, r"analyses\.des\.design\.simulator: only for task: custom"),
])
def test_bad_design_input_is_refused_naming_the_key(change, message):
    config = {"analyses": {"des": {**copy.deepcopy(ANALYSIS), "design": {**DESIGN, **change}}}}
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA)


def test_an_analysis_is_design_only_or_has_every_inference_key():
    """Only an active design block may stand alone; an unfolding needs the inference keys."""
    config = validate_config({"analyses": {"d": {"design": {"activate": True}}}}, SCHEMA)
    assert config["analyses"]["d"]["design"]["task"] == "linear_gaussian"
    with pytest.raises(ConfigError, match=r"analyses\.d: '(task|simulations|methods|observations)' is a required"):
        validate_config({"analyses": {"d": {"design": {"activate": False}}}}, SCHEMA)
    with pytest.raises(ConfigError, match=r"analyses\.d: '(task|simulations|observations)' is a required"):
        validate_config({"analyses": {"d": {"methods": ["npe"], "design": {"activate": True}}}}, SCHEMA)
    unfolding = {"activate": True, "population": {"source": {"builtin": "gaussian_smearing"}, "size": 100}}
    with pytest.raises(ConfigError, match=r"analyses\.d\.unfolding: unfolding needs an analysis that infers"):
        validate_config({"analyses": {"d": {"design": {"activate": True}, "unfolding": unfolding}}}, SCHEMA)
