"""The unfolding stage in the workflow: a tiny closure test end to end, what a settings edit reruns,
and bad unfolding input refused before any job runs, naming the key."""

from __future__ import annotations

import copy
import csv
import json
import subprocess
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import torch
import yaml

from sbi_core.config import validate_config
from sbi_core.errors import ConfigError
from sbi_core.unfolding import load_source
from tests.conftest import SCHEMA, SNAKEMAKE, TINY_TRAINING, snakemake_in

ANALYSIS = {
    "task": "gaussian_smearing",
    "seed": 4,
    "simulations": {"train": 800, "test": 30, "shards": 1},
    "methods": ["nre"],
    "observations": [{"name": "o1", "theta": [1.0]}],
    "training": dict(TINY_TRAINING),
    "sampling": {"num_samples": 50, "num_chains": 4, "warmup_steps": 10},
    "diagnostics": {"num_simulations": 30, "num_samples": 20, "c2st_num_samples": 50, "ppc_num_simulations": 20},
    "unfolding": {
        "activate": True,
        "population": {"source": {"builtin": "gaussian_smearing"}, "size": 400},
        "fit": {"num_atoms": 32, "steps": 20, "batch_size": 100},
        "num_bootstrap": 2,
        "bootstrap_steps": 5,
        "bootstrap_start": "cold",  # each refit a full (tiny) fit from the prior; `make run` runs warm ones
        "estimator_replicas": 2,
        "num_samples": 300,
        "c2st_num_samples": 100,
        "posteriors": 2,
        "bins": 8,
    },
}


def _config(analysis: dict) -> dict:
    return {"analyses": {"unf": copy.deepcopy(analysis)}}


@pytest.fixture(scope="module")
def unfolding_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("unfolding")
    (folder / "config.yaml").write_text(yaml.safe_dump(_config(ANALYSIS)))
    run = snakemake_in(folder)
    assert run.returncode == 0, run.stderr[-4000:]
    return folder / "results" / "unf"


def test_every_unfolding_artifact_loads(unfolding_run):
    unfolding = unfolding_run / "unfolding"
    payload = torch.load(unfolding / "nre" / "source.pt", weights_only=True)
    assert json.loads(payload["hyperparameters"])["kind"] == "neb_source" and "provenance" in payload
    source = load_source(unfolding / "nre" / "source.pt")
    with torch.no_grad():
        assert bool(((source().sample((100,)) >= -5) & (source().sample((100,)) <= 5)).all())

    unfolded = az.from_netcdf(unfolding / "nre" / "unfolded.nc")
    assert list(unfolded.posterior.data_vars) == ["theta"] and unfolded.posterior["theta"].shape == (1, 300)
    assert "provenance" in unfolded.posterior.attrs
    with np.load(unfolding / "nre" / "bootstrap.npz") as bootstrap:
        assert bootstrap["samples"].shape == (2, 300, 1)
    for replica in range(2):
        with np.load(unfolding / "nre" / "replicas" / f"replica_{replica}.npz") as data:
            assert data["samples"].shape == (300, 1) and np.isfinite(data["samples"]).all()
    posteriors = az.from_netcdf(unfolding / "nre" / "posteriors.nc")
    assert posteriors.posterior["theta"].shape == (1, 50, 2)  # chain, draw, observation

    with open(unfolding / "nre" / "spectra.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    for key in ("unfolded", "stat_low", "stat_high", "estimator_low", "estimator_high", "truth", "prior", "ibu", "ibu_err"):
        assert all(np.isfinite(float(row[key])) for row in rows), key
    widths = np.array([float(r["bin_high"]) - float(r["bin_low"]) for r in rows])
    for key in ("unfolded", "truth", "prior", "ibu"):
        assert np.sum([float(r[key]) for r in rows] * widths) == pytest.approx(1.0, abs=0.02), key

    metrics = json.loads((unfolding / "nre" / "metrics.json").read_text())
    assert metrics["population_size"] == 400
    assert 0.0 <= metrics["c2st_truth"]["accuracy"] <= 1.0
    assert metrics["regenerated"]["c2st"]["num_samples_observed"] == 100
    theta = metrics["parameters"]["theta"]
    assert set(theta) == {"mean", "std", "rms", "mean_err", "std_err", "rms_err"}
    assert theta["rms"] == pytest.approx(np.hypot(theta["mean"], theta["std"]), rel=1e-2)  # sign-invariant size
    closure = json.loads((unfolding / "nre" / "closure.json").read_text())["closure"]["theta"]
    assert {"chi2_per_bin", "stat_band_coverage", "total_band_coverage", "ibu_best_chi2_per_bin"} <= set(closure)
    ibu = json.loads((unfolding / "ibu" / "results.json").read_text())["parameters"]["theta"]
    assert len(ibu["iterations"]) == ibu["num_iterations"] and len(ibu["unfolded"]) == 8

    summary = json.loads((unfolding_run / "summary.json").read_text())
    assert summary["unfolding"]["methods"]["nre"]["population_size"] == 400
    assert summary["unfolding"]["ibu"]["num_iterations"]["theta"] == ibu["num_iterations"]
    html = (unfolding_run / "report.html").read_text()
    assert "Unfolding (neural empirical Bayes)" in html and "Unfolded spectra with bands" in html
    for plot in ("spectra", "pair", "regenerated"):
        assert (unfolding / "nre" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_binning_edit_reruns_the_spectra_not_the_fit(unfolding_run):
    folder = unfolding_run.parents[1]
    edited = copy.deepcopy(ANALYSIS)
    edited["unfolding"]["bins"] = 6
    edited["unfolding"]["ibu"] = {"observable_bins": 20}
    (folder / "edited.yaml").write_text(yaml.safe_dump(_config(edited)))
    dry = subprocess.run([*SNAKEMAKE, "--directory", str(folder), "--configfile", str(folder / "edited.yaml"), "-n",
                          "--cores", "1"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    scheduled = {line.split()[0] for line in dry.stdout.split("Job stats:")[1].splitlines()[3:] if line.strip()}
    assert {"ibu", "unfold_spectra", "report"} <= scheduled
    assert not {"unfold", "unfold_replica", "train", "simulate", "population", "eb_posteriors"} & scheduled


def _refused(analysis: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate_config(_config(analysis), SCHEMA)


def test_a_population_file_of_the_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "population.npy"
    np.save(path, np.zeros((50, 3), dtype=np.float32))
    analysis = copy.deepcopy(ANALYSIS)
    analysis["unfolding"]["population"] = {"file": str(path)}
    _refused(analysis, r"analyses\.unf\.unfolding\.population\.file: .*shape \[50, 3\], expected \[n, 1\]")


def test_a_source_outside_the_prior_is_refused():
    analysis = copy.deepcopy(ANALYSIS)
    analysis["unfolding"]["population"]["source"] = {"type": "gaussian", "mean": [4.0], "std": [2.0]}
    _refused(analysis, r"analyses\.unf\.unfolding\.population\.source: the source puts mass outside the prior's support")


def test_cause_bins_the_simulations_cannot_fill_are_refused():
    analysis = copy.deepcopy(ANALYSIS)
    analysis["unfolding"]["bins"] = 2000
    _refused(analysis, r"analyses\.unf\.unfolding\.bins: 2000 bins leave cause bin \d+ of theta without training simulations")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"methods": ["npe"]}, r"analyses\.unf\.unfolding\.methods: \['npe'\] are not among the analysis's methods"),
        ({"ibu": {"observables": [3]}}, r"analyses\.unf\.unfolding\.ibu\.observables: expected 1 feature indices"),
        ({"fit": {"estimator": "unbiased"}}, r"analyses\.unf\.unfolding\.fit\.estimator"),
        ({"population": {"size": 100}}, r"analyses\.unf\.unfolding\.population"),
    ],
)
def test_bad_unfolding_settings_name_the_key(edit, match):
    analysis = copy.deepcopy(ANALYSIS)
    analysis["unfolding"].update(edit)
    _refused(analysis, match)


def test_inactive_unfolding_needs_no_population():
    analysis = copy.deepcopy(ANALYSIS)
    analysis["unfolding"] = {"activate": False}
    assert validate_config(_config(analysis), SCHEMA)["analyses"]["unf"]["unfolding"]["activate"] is False
