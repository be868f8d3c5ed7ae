"""End to end: the tiny analyses through Snakemake in a temporary folder (tests/conftest.py's
reference run), artifact by artifact. Invocations that need no run: tests/test_invocations.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import torch

from sbi_core.diagnostics import VERDICTS
from sbi_core.estimators import load_estimator


@pytest.fixture(scope="module")
def tiny_run(tiny_reference_run) -> Path:
    """tests/conftest.py's reference run: it builds the three `user_analyses` beside the tiny
    built-in analysis (NPE and NRE), in one invocation; this module only reads it."""
    return tiny_reference_run


def test_every_artifact_exists_loads_and_is_sane(tiny_run):
    results = tiny_run / "results"
    for analysis, methods, observations, d in (
        ("tiny_hf", ["npe", "nre"], ["observed"], 3),
        ("user_sim", ["nre_c"], ["data"], 2),
        ("user_files", ["npe"], ["data"], 2),
    ):
        root = results / analysis
        for split in ("train", "test"):
            data = np.load(root / "simulations" / f"{split}.npz")
            meta = json.loads((root / "simulations" / f"{split}.json").read_text())
            assert data["theta"].shape == (meta["num_valid"], d)
            assert np.isfinite(data["x"]).all()
            assert meta["num_valid"] + meta["num_invalid"] == meta["num_simulated"]
            assert meta["provenance"]["seed"] == meta["provenance"]["seed"] >= 0
        num_sbc = min(20, meta["num_valid"])  # the test split, after dropping invalid rows
        for method in methods:
            raw = torch.load(root / "estimators" / f"{method}.pt", weights_only=True)
            assert set(raw) == {"state_dict", "hyperparameters", "provenance"}
            hyper = load_estimator(root / "estimators" / f"{method}.pt").hyperparameters
            assert hyper["method"] == method and hyper["dim_theta"] == d
            history = (root / "estimators" / f"{method}_history.csv").read_text().splitlines()
            header = "epoch,training_loss,validation_loss"
            if analysis == "tiny_hf":  # ensembles of two: a column pair per further member, and each member's loss
                assert hyper["ensemble"] == {"members": 2, "bootstrap": False}
                header += ",training_loss_2,validation_loss_2"
                metadata = json.loads((root / "estimators" / f"{method}.json").read_text())
                assert len(metadata["ensemble_members"]) == 2
            assert history[0] == header and len(history) >= 2
            for name in observations:
                idata = az.from_netcdf(root / "posteriors" / method / f"{name}.nc")
                names = list(idata.posterior.data_vars)
                assert len(names) == d
                samples = np.stack([idata.posterior[p].values.ravel() for p in names], -1)
                assert samples.shape == (100, d) and np.isfinite(samples).all()
                assert "x" in idata.observed_data
                assert idata.posterior.attrs["method"] == method
                assert json.loads(idata.posterior.attrs["provenance"])["config_hash"]
                _assert_png(root / "diagnostics" / method / f"pair_{name}.png")
            calibration = json.loads((root / "diagnostics" / method / "calibration.json").read_text())
            assert calibration["num_simulations"] == calibration["sbc"]["parameters"]["num_simulations"] == num_sbc
            assert all(0 <= p <= 1 for p in calibration["sbc"]["parameters"]["ks_pvalues"])
            assert len(calibration["sbc"]["log_density"]["ks_pvalues"]) == 1
            assert calibration["verdicts"]["coverage"] in VERDICTS and calibration["verdicts"]["tarp"] in VERDICTS
            assert len(calibration["coverage"]["coverage"]) == 19 and calibration["tarp"]["num_simulations"] == num_sbc
            assert {"sampling", "log_density", "sbc", "coverage", "tarp"} <= set(calibration["seconds"])
            saved = np.load(root / "diagnostics" / method / "sbc_ranks.npz")
            ranks = saved["ranks"]
            assert ranks.shape == (num_sbc, d) and ranks.min() >= 0 and ranks.max() <= 20
            assert saved["log_density_ranks"].shape == (num_sbc,)
            for plot in ("sbc_ranks", "coverage", "tarp"):
                _assert_png(root / "diagnostics" / method / f"{plot}.png")
            for name in observations if analysis != "user_files" else []:  # needs a simulator
                check = json.loads((root / "diagnostics" / method / f"ppc_{name}.json").read_text())
                assert check["num_simulations"] + check["num_invalid"] == 30 and 0 < check["distance_pvalue"] <= 1
                assert len(check["feature_pvalues"]) == len(check["x_observed"]) and check["observation"] == name
                _assert_png(root / "diagnostics" / method / f"ppc_{name}.png")
            _assert_png(root / "estimators" / f"{method}_loss.png")
        summary = json.loads((root / "summary.json").read_text())
        assert sorted(summary["methods"]) == sorted(methods)
        for method, numbers in summary["methods"].items():
            assert numbers["coverage"]["verdict"] in VERDICTS and numbers["tarp"]["verdict"] in VERDICTS
            assert numbers["diagnostics_seconds"]["total"] > 0 and numbers["diagnostics_seconds"]["c2st"] >= 0
            assert (analysis == "user_files") == (numbers["ppc"] == {}), method
        assert not (root / "diagnostics" / "npe" / "ppc_data.json").exists() or analysis != "user_files"
        html = (root / "report.html").read_text()
        assert "data:image/png;base64" in html and all(m.upper() in html for m in methods)
        assert "Calibration verdicts" in html and "Time per method" in html
    assert not list(results.rglob("*.tmp*")), "temporary files left behind"
    umask = os.umask(0o022)
    os.umask(umask)
    for path in (results / "tiny_hf" / "summary.json", results / "tiny_hf" / "report.html",
                 results / "tiny_hf" / "estimators" / "npe.pt", results / "tiny_hf" / "posteriors" / "npe" / "observed.nc"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path  # readable by the lab, as the umask says
    assert not list(results.rglob("shard_*.npz")), "shards are temporary"


def test_user_simulator_rows_with_nan_were_dropped_and_counted(tiny_run):
    meta = json.loads((tiny_run / "results/user_sim/simulations/train.json").read_text())
    assert meta["num_simulated"] == 600 and meta["shards"] == 2
    assert 30 <= meta["num_invalid"] <= 90  # ~10% of 600
    assert meta["source"] == "simulated"
    summary = json.loads((tiny_run / "results/user_sim/summary.json").read_text())
    assert summary["simulations"]["train"]["num_invalid"] == meta["num_invalid"]


def test_histfactory_analysis_has_posteriors_and_limits_beside_pyhf(tiny_run):
    root = tiny_run / "results" / "tiny_hf"
    observed = np.load(root / "observations" / "observed.npz")
    np.testing.assert_array_equal(observed["x_o"], [51.0, 48.0])  # the workspace's data
    reference = np.load(root / "references" / "observed.npz")
    assert reference["reference_samples"].shape == (100, 3)  # exact posterior, for C2ST
    limits = json.loads((root / "limits" / "nre.json").read_text())["limits"]["observed"]
    pyhf = json.loads((root / "limits" / "pyhf.json").read_text())["limits"]["observed"]
    assert limits["pyhf"] == pyhf
    assert pyhf["observed_limit"] == pytest.approx(1.02, abs=0.05)  # pyhf on this workspace: 1.0176
    assert 0 < limits["ours"]["observed_limit"] <= 5.0 and len(limits["ours"]["expected_limits"]) == 5
    members = limits["ours"]["members"]  # an ensemble of two: each member's own limits beside its
    assert len(members["observed_limits"]) == len(members["expected_median_limits"]) == 2
    assert all(0 < limit <= 5.0 for limit in members["observed_limits"])
    assert not (root / "limits" / "npe.json").exists()  # NPE has no likelihood to profile
    _assert_png(root / "limits" / "nre.png")
    summary = json.loads((root / "summary.json").read_text())
    assert set(summary["upper_limits"]) == {"nre"}
    assert summary["methods"]["npe"]["c2st"]["observed"]["accuracy"] >= 0.3
    assert summary["upper_limits"]["nre"]["observed"]["members_observed"] == members["observed_limits"]
    assert summary["methods"]["nre"]["ensemble_members"] == 2
    report = (root / "report.html").read_text()
    assert "CLs upper limits" in report and "(members " in report and "(most of 2 members)" in report


def test_c2st_where_a_reference_exists(tiny_run):
    def result(analysis, method, observation):
        path = tiny_run / f"results/{analysis}/diagnostics/{method}/c2st_{observation}.json"
        return json.loads(path.read_text())

    exact, given = result("tiny_hf", "npe", "observed"), result("user_files", "npe", "data")
    assert exact["num_samples"] == given["num_samples"] == 100  # min(posterior, reference, c2st_num_samples)
    # a user simulator without reference samples
    assert result("user_sim", "nre_c", "data")["accuracy"] is None
    assert json.loads((tiny_run / "results/user_sim/summary.json").read_text())["methods"]["nre_c"]["c2st"] == {}
    for c2st in (exact, given):
        assert 0.3 <= c2st["accuracy"] <= 1.0 and c2st["stderr"] > 0
    summary = json.loads((tiny_run / "results/tiny_hf/summary.json").read_text())
    assert summary["methods"]["npe"]["c2st"]["observed"] == {k: exact[k] for k in ("accuracy", "stderr", "num_samples")}


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
