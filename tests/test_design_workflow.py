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
TARGET = "results/des/design/best_design.json"


def _write(folder: Path, design: dict) -> None:
    (folder / "config.yaml").write_text(yaml.safe_dump({"analyses": {"des": {**copy.deepcopy(ANALYSIS), "design": design}}}))


@pytest.fixture(scope="module")
def design_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("design")
    _write(folder, DESIGN)
    result = snakemake_in(folder, TARGET)
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
        # the re-estimate on fresh simulations agrees with the exact EIG of the design it chose
        assert abs(record["best_eig"] - record["exact_eig_of_best"]) < 4 * record["best_eig_stderr"] + 0.02
    assert best["best"]["best_eig"] == max(r["best_eig"] for r in best["methods"].values())
    with np.load(prefix / "ascent.npz") as ascent:
        assert ascent["spce_paths"].shape == (11, 4, 2, 1) and ascent["nre_values"].shape == (10, 4)
    assert (prefix / "eig.png").stat().st_size > 10_000
    state = torch.load(prefix / "estimators/nre.pt", weights_only=True)
    assert json.loads(state["hyperparameters"])["x_shape"] == [4]  # two outcomes and their two designs


def test_a_candidate_setting_reruns_the_design_step_only(design_run):
    _write(design_run, {**DESIGN, "candidates": 7})
    try:
        dry = snakemake_in(design_run, TARGET, "-n")
        assert dry.returncode == 0, dry.stderr[-3000:]
        jobs = dry.stdout + dry.stderr
        assert "rule design:" in jobs and "rule design_train:" not in jobs
        _write(design_run, {**DESIGN, "training": {"max_epochs": 6}})
        jobs = snakemake_in(design_run, TARGET, "-n")
        assert "rule design_train:" in jobs.stdout + jobs.stderr
    finally:
        _write(design_run, DESIGN)


@pytest.mark.parametrize(("change", "message"), [
    ({"space": {"low": [1.0], "high": [-1.0]}}, r"analyses\.des\.design\.space: low must be below high"),
    ({"space": {"low": [0.0, 0.0], "high": [1.0, 1.0]}}, r"analyses\.des\.design\.space: linear_gaussian has 1 design variable"),
    ({"training": {"max_epoch": 5}}, r"analyses\.des\.design\.training\.max_epoch: not a training key"),
    ({"methods": ["nre"], "num_outer": 64, "num_contrastive": 128}, r"analyses\.des\.design\.num_outer: 64 joint draws"),
    ({"task": "location"}, r"analyses\.des\.design\.task: 'location' is not one of"),
])
def test_bad_design_input_is_refused_naming_the_key(change, message):
    config = {"analyses": {"des": {**copy.deepcopy(ANALYSIS), "design": {**DESIGN, **change}}}}
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA)
