"""Every workflow step in process, on tiny data, without Snakemake: the steps' own test path.

Whole Snakemake runs (test_workflow, test_reruns, test_reproducibility, test_slurm) test
the workflow itself; here each step's typed arguments and artifacts are checked in
seconds, the way a notebook would call them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sbi_core.pipeline.c2st import c2st
from sbi_core.pipeline.diagnose import diagnose
from sbi_core.pipeline.observe import observe, reference_posterior
from sbi_core.pipeline.plot_posterior import plot_posterior
from sbi_core.pipeline.predictive import posterior_predictive
from sbi_core.pipeline.report import report
from sbi_core.pipeline.sample import sample
from sbi_core.pipeline.simulate import collect, simulate
from sbi_core.pipeline.train import train
from sbi_core.errors import ArtifactError, SimulationError
from sbi_core.estimators import load_estimator, method_spec
from sbi_core.io import read_provenance
from sbi_core.schema import task_settings
from tests.conftest import validated

NAME = "demo"
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: small networks, one torch thread


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> tuple[dict, Path]:
    """A validated tiny gaussian_linear analysis with NPE, NLE, NRE-A and BNRE, and its results folder."""
    analysis = validated({
        "task": "gaussian_linear",
        "seed": 3,
        "simulations": {"train": 300, "test": 20, "shards": 2},
        "methods": ["npe", "nle", "nre_a", "bnre"],
        "observations": [{"name": "o1", "theta": [0.1] * 10}],
        "training": {"hidden_features": 16, "num_transforms": 2, "batch_size": 100, "max_epochs": 3, "patience": 2},
        "sampling": {"num_samples": 40, "num_chains": 4, "warmup_steps": 10},
        "diagnostics": {"num_simulations": 20, "num_samples": 20, "c2st_num_samples": 40, "ppc_num_simulations": 10},
    }, NAME)
    return analysis, tmp_path_factory.mktemp("steps")


@pytest.fixture(scope="module")
def simulated(settings) -> Path:
    analysis, root = settings
    task, simulations = task_settings(analysis), analysis["simulations"]
    for split in ("train", "test"):
        shards = [str(root / f"{split}_{i}.npz") for i in range(simulations["shards"])]
        for shard, path in enumerate(shards):
            simulate(task, NAME, split, simulations[split], simulations["shards"], shard, analysis["seed"],
                     simulations["time_limit"], path)
        collect(analysis["task"], NAME, split, simulations[split], simulations["max_invalid_fraction"],
                         analysis["seed"], shards, str(root / f"{split}.npz"), str(root / f"{split}.json"))
    observation = analysis["observations"][0]
    observe(task, NAME, observation, analysis["seed"], None, str(root / "o1.npz"))
    reference_posterior(task, NAME, "o1", analysis["seed"], analysis["diagnostics"]["c2st_num_samples"],
                                 str(root / "o1.npz"), None, str(root / "o1_reference.npz"))
    return root


def _keys(block: dict, keys: tuple[str, ...]) -> dict:
    return {key: block[key] for key in keys if key in block}


# NRE and NRE-C: through Snakemake in tests/conftest.py's reference run
@pytest.mark.parametrize("method", ["npe", "nle", "nre_a", "bnre"])
def test_every_step_in_process(settings, simulated, method):
    analysis, _ = settings
    root, task, seed, spec = simulated, task_settings(analysis), analysis["seed"], method_spec(method)
    training = _keys(analysis["training"], spec.training_keys)
    sampling = _keys(analysis["sampling"], spec.sampling_keys)
    split = json.loads((root / "train.json").read_text())
    assert split["num_valid"] == 300 and split["shards"] == 2

    out = root / method
    train(task, NAME, method, training, seed, "cpu", str(root / "train.npz"), str(out / "estimator.pt"),
                   str(out / "estimator.json"), str(out / "history.csv"), str(out / "loss.png"))
    trained = load_estimator(out / "estimator.pt")
    assert trained.method == method and trained.hyperparameters["parameter_names"][0] == "theta_1"
    assert read_provenance(out / "estimator.pt")["seed"] == seed
    sample(task, NAME, method, "o1", sampling, seed, "cpu", str(out / "estimator.pt"), str(root / "o1.npz"),
                    str(out / "o1.nc"))
    diagnostics = analysis["diagnostics"]
    diagnose(task, NAME, method, sampling, seed, "cpu", diagnostics["num_simulations"],
                      diagnostics["num_samples"], diagnostics["confidence"], diagnostics["coverage_num_levels"],
                      diagnostics["tarp"], str(out / "estimator.pt"), str(root / "test.npz"),
                      str(out / "calibration.json"), str(out / "ranks.npz"), str(out / "ranks.png"),
                      str(out / "coverage.png"), str(out / "tarp.png"))
    c2st(NAME, method, "o1", seed, diagnostics["c2st_num_samples"], str(out / "o1.nc"),
                  str(root / "o1_reference.npz"), str(out / "c2st.json"))
    plot_posterior(NAME, method, str(out / "o1.nc"), str(root / "o1.npz"), str(root / "o1_reference.npz"),
                            str(out / "pair.png"))
    posterior_predictive(task, NAME, method, seed, diagnostics["ppc_num_simulations"], str(root / "o1.npz"),
                                  str(out / "o1.nc"), str(out / "ppc.json"), str(out / "ppc.png"))
    report(analysis["task"], NAME, seed, [str(root / "train.json"), str(root / "test.json")],
                    [str(out / "estimator.json")], [str(out / "calibration.json")], [str(out / "c2st.json")],
                    [str(out / "ppc.json")], [], [str(out / "pair.png")], str(out / "summary.json"),
                    str(out / "report.html"))

    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["num_simulations"] == 20 and calibration["verdicts"]["coverage"]
    two_sample = json.loads((out / "c2st.json").read_text())
    assert two_sample["num_samples"] == 40 and 0.3 <= two_sample["accuracy"] <= 1.0 and two_sample["stderr"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"][method]["c2st"]["o1"]["num_samples"] == 40
    assert summary["methods"][method]["ppc"]["o1"]["num_simulations"] == 10
    assert summary["seed"] == seed and summary["task"] == "gaussian_linear"
    for png in ("loss", "ranks", "coverage", "tarp", "pair", "ppc"):
        assert (out / f"{png}.png").read_bytes()[:4] == b"\x89PNG"


def test_reference_samples_from_the_exact_posterior_and_none_without_one(settings, simulated, tmp_path):
    analysis, _ = settings
    reference = np.load(simulated / "o1_reference.npz")["reference_samples"]
    assert reference.shape == (40, 10)
    custom = {"task": "custom", "prior": {"type": "box_uniform", "low": [-1, -1], "high": [1, 1]}}
    np.save(tmp_path / "x.npy", np.zeros(2, np.float32))
    np.savez(tmp_path / "train.npz", theta=np.zeros((5, 2)), x=np.zeros((5, 2)))
    observe(custom, NAME, {"name": "data", "file": str(tmp_path / "x.npy")}, 0, str(tmp_path / "train.npz"),
            str(tmp_path / "data.npz"))
    reference_posterior(custom, NAME, "data", 0, 40, str(tmp_path / "data.npz"), None, str(tmp_path / "r.npz"))
    assert np.load(tmp_path / "r.npz")["reference_samples"].shape == (0, 2)


# ---------------------------------------------------------------------- hostile input (issue 15)

BOX_TASK = {"task": "custom", "prior": {"type": "box_uniform", "low": [-1, -1], "high": [1, 1]}}


def test_observe_takes_one_leading_row_and_refuses_nan(tmp_path):
    np.savez(tmp_path / "train.npz", theta=np.zeros((5, 2)), x=np.zeros((5, 2)))
    np.save(tmp_path / "one_row.npy", np.array([[0.5, -0.5]], np.float32))
    observe(BOX_TASK, NAME, {"name": "a", "file": str(tmp_path / "one_row.npy")}, 0, str(tmp_path / "train.npz"),
            str(tmp_path / "a.npz"))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["x_o"], [0.5, -0.5])
    np.save(tmp_path / "nan.npy", np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ArtifactError, match=r"nan\.npy: 1 of 2 values are NaN or inf"):
        observe(BOX_TASK, NAME, {"name": "b", "file": str(tmp_path / "nan.npy")}, 0, str(tmp_path / "train.npz"),
                str(tmp_path / "b.npz"))
    assert not (tmp_path / "b.npz").exists()


def test_observe_refuses_a_simulated_observation_that_is_not_finite(user_simulator, tmp_path):
    task = {**BOX_TASK, "simulator": user_simulator}  # NaN where theta_1 > 0.8
    with pytest.raises(SimulationError, match=r"analyses\.demo\.observations: o: the simulator returned NaN/inf at theta \[0\.9, 0\.0\]"):
        observe(task, NAME, {"name": "o", "theta": [0.9, 0.0]}, 0, None, str(tmp_path / "o.npz"))
    assert not (tmp_path / "o.npz").exists()


def test_a_garbage_posterior_file_is_named(tmp_path):
    (tmp_path / "o1.nc").write_bytes(b"\x89HDF garbage" * 10)
    with pytest.raises(ArtifactError, match=r"o1\.nc: not an ArviZ InferenceData netCDF file with a posterior group"):
        plot_posterior(NAME, "npe", str(tmp_path / "o1.nc"), "unused.npz", "unused.npz", str(tmp_path / "pair.png"))
    assert not (tmp_path / "pair.png").exists()


LIGHT_STEPS = ("collect", "c2st", "plot_posterior", "report")


@pytest.mark.parametrize("step", LIGHT_STEPS)
def test_light_steps_start_without_torch(step, tmp_path):
    """A job that only reads and writes files (merges, pair plots, the report; the C2ST until it trains) does not load
    torch, which costs every job 2-3 s of start-up; start_job caps the threads through OMP_NUM_THREADS,
    which torch reads when a heavier step loads it."""
    code = (
        f"import sys; from sbi_core.job import start_job; start_job({str(tmp_path / 'job.log')!r}, 1); "
        f"from sbi_core.pipeline import {step}; "
        "assert 'torch' not in sys.modules, 'torch loaded'; "
        "import torch; assert torch.get_num_threads() == 1, torch.get_num_threads()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    log = tmp_path / "job.log"
    assert result.returncode == 0, (log.read_text() if log.exists() else result.stderr)[-2000:]
