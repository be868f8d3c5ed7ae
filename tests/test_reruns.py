"""Reruns follow the data: on a finished tiny analysis, `snakemake -n` after a config or file
edit schedules exactly the jobs that read what changed, never a retraining for a plot setting."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import SAME_THREADS, SNAKEMAKE, TINY_WORKFLOW, TINY_WORKFLOW_CONFIG, workflow_env

DIAGNOSTICS_JOBS = {"diagnose", "reference_posterior", "c2st", "plot_posterior", "posterior_predictive", "report", "all"}


def _scheduled(folder: Path, config: dict) -> dict[str, int]:
    """Rule -> number of jobs that `snakemake -n` schedules in `folder` for `config`."""
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "--directory", str(folder), "--configfile", str(folder / "config.yaml")],
        capture_output=True, text=True, env=workflow_env(), cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if "Nothing to be done" in result.stdout + result.stderr:
        return {}
    table = result.stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE)}


def _edited(change) -> dict:
    config = copy.deepcopy(TINY_WORKFLOW_CONFIG)
    change(config["analyses"][TINY_WORKFLOW])
    return config


@pytest.fixture(scope="module")
def finished(tiny_reference_run, tmp_path_factory) -> Path:
    """A copy of the finished tiny analysis (results and Snakemake's records, mtimes kept)."""
    folder = tmp_path_factory.mktemp("reruns") / "run"
    shutil.copytree(tiny_reference_run, folder, symlinks=True)
    assert _scheduled(folder, TINY_WORKFLOW_CONFIG) == {}
    return folder


def _set(block: str, key: str, value):
    return lambda analysis: analysis.setdefault(block, {}).__setitem__(key, value)


def test_a_diagnostics_key_reruns_only_the_diagnostics_and_the_report(finished):
    jobs = _scheduled(finished, _edited(_set("diagnostics", "num_samples", 30)))
    assert jobs == {"diagnose": 2, "report": 1, "all": 1}
    jobs = _scheduled(finished, _edited(_set("diagnostics", "c2st_num_samples", 60)))
    assert set(jobs) <= DIAGNOSTICS_JOBS and jobs["c2st"] == 2 and "diagnose" not in jobs, jobs


def test_a_sampling_key_reruns_sampling_and_what_depends_on_it_for_the_methods_that_read_it(finished):
    jobs = _scheduled(finished, _edited(_set("sampling", "num_chains", 12)))
    # NRE samples by MCMC and reads num_chains; NPE samples its flow and does not.
    assert jobs == {"sample": 1, "diagnose": 1, "c2st": 1, "plot_posterior": 1, "report": 1, "all": 1}
    jobs = _scheduled(finished, _edited(_set("sampling", "num_samples", 60)))
    assert jobs["sample"] == 2 and not {"train", "simulate", "merge_simulations"} & set(jobs), jobs


def test_a_training_key_reruns_training_and_downstream_not_simulation(finished):
    jobs = _scheduled(finished, _edited(_set("training", "num_atoms", 5)))  # NRE-B's only
    assert jobs["train"] == 1 and jobs["sample"] == 1 and jobs["diagnose"] == 1, jobs
    jobs = _scheduled(finished, _edited(_set("training", "hidden_features", 8)))
    assert jobs["train"] == 2 and not {"simulate", "merge_simulations", "observe"} & set(jobs), jobs


def test_a_new_observation_adds_only_its_own_jobs_and_the_report(finished):
    jobs = _scheduled(finished, _edited(lambda a: a["observations"].append({"name": "o2", "theta": [0.2] * 10})))
    assert jobs == {"observe": 1, "reference_posterior": 1, "sample": 2, "c2st": 2, "plot_posterior": 2,
                    "report": 1, "all": 1}


def test_an_edited_observation_or_reference_file_reruns_what_depends_on_it(finished):
    """An observation read from a file, with a reference file: run once, then edit each file."""
    rng = np.random.default_rng(0)
    np.save(finished / "x_o.npy", rng.normal(size=10).astype(np.float32))
    np.save(finished / "reference.npy", rng.normal(size=(50, 10)).astype(np.float32))
    config = _edited(lambda a: a["observations"].append(
        {"name": "data", "file": "x_o.npy", "reference_samples": "reference.npy"}))
    (finished / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(finished), "--configfile", str(finished / "config.yaml"),
         "--cores", "2", *SAME_THREADS],
        capture_output=True, text=True, env=workflow_env(), cwd=finished,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _scheduled(finished, config) == {}

    stamp = (finished / "x_o.npy").stat()
    np.save(finished / "x_o.npy", rng.normal(size=10).astype(np.float32))
    assert _scheduled(finished, config) == {"observe": 1, "reference_posterior": 1, "sample": 2, "c2st": 2,
                                            "plot_posterior": 2, "report": 1, "all": 1}
    os.utime(finished / "x_o.npy", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # as if unedited: no second run
    assert _scheduled(finished, config) == {}
    np.save(finished / "reference.npy", rng.normal(size=(50, 10)).astype(np.float32))
    assert _scheduled(finished, config) == {"reference_posterior": 1, "c2st": 2, "plot_posterior": 2,
                                            "report": 1, "all": 1}
