"""Reruns follow the data: on a finished tiny analysis, `snakemake -n` after a config or file
edit schedules exactly the jobs that read what changed, never a retraining for a plot setting.

The finished analyses are a copy of tests/conftest.py's reference run. A dry run writes nothing
there but Snakemake's I/O cache (read only with --trust-io-cache), so the two dry runs of a
test run side by side, each with its own config file."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import SNAKEMAKE, TINY_WORKFLOW, TINY_WORKFLOW_CONFIG, user_env, workflow_env

DIAGNOSTICS_JOBS = {"diagnose", "reference_posterior", "c2st", "plot_posterior", "posterior_predictive", "report", "all"}


def _scheduled(folder: Path, config: dict, name: str = "config.yaml",
               env: dict | None = None) -> dict[str, int]:
    """Rule -> number of jobs that `snakemake -n` schedules in `folder` for `config` (written to `name`)."""
    (folder / name).write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "--directory", str(folder), "--configfile", str(folder / name)],
        capture_output=True, text=True, env=env or workflow_env(), cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if "Nothing to be done" in result.stdout + result.stderr:
        return {}
    table = result.stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE)}


def _scheduled_both(folder: Path, first: dict, second: dict) -> list[dict[str, int]]:
    """`_scheduled` of two configs side by side (a dry run is one process, mostly start-up)."""
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(_scheduled, folder, config, f"config_{i}.yaml") for i, config in enumerate((first, second))]
        return [run.result() for run in runs]


def _file_analyses(folder: Path) -> dict:
    """The reference run's analyses with observation files: user_sim (x_o.npy; NRE-A, NRE-C and BNRE)
    and user_files (x_o.csv with reference.csv; NPE), as tests/conftest.py's `user_analyses` made them."""
    analyses = yaml.safe_load((folder / "reference.yaml").read_text())["analyses"]
    return {"analyses": {name: analyses[name] for name in ("user_sim", "user_files")}}


def _edited(change) -> dict:
    config = copy.deepcopy(TINY_WORKFLOW_CONFIG)
    change(config["analyses"][TINY_WORKFLOW])
    return config


@pytest.fixture(scope="module")
def finished(tiny_reference_run, tmp_path_factory) -> Path:
    """A copy of the finished reference run (results and Snakemake's records, mtimes kept), with
    nothing left to do for the tiny analysis nor for the analyses with observation files."""
    folder = tmp_path_factory.mktemp("reruns") / "run"
    shutil.copytree(tiny_reference_run, folder, symlinks=True)
    (folder / "config.yaml").rename(folder / "reference.yaml")
    with ThreadPoolExecutor(2) as pool:
        tiny = pool.submit(_scheduled, folder, TINY_WORKFLOW_CONFIG)
        files = pool.submit(_scheduled, folder, _file_analyses(folder), "files.yaml", user_env(folder))
        assert tiny.result() == {} and files.result() == {}
    return folder


def _set(block: str, key: str, value):
    return lambda analysis: analysis.setdefault(block, {}).__setitem__(key, value)


def test_a_diagnostics_key_reruns_only_the_diagnostics_and_the_report(finished):
    jobs, other = _scheduled_both(finished, _edited(_set("diagnostics", "num_samples", 30)),
                                  _edited(_set("diagnostics", "c2st_num_samples", 60)))
    assert jobs == {"diagnose": 2, "report": 1, "all": 1}
    assert set(other) <= DIAGNOSTICS_JOBS and other["c2st"] == 2 and "diagnose" not in other, other


def test_a_sampling_key_reruns_sampling_and_what_depends_on_it_for_the_methods_that_read_it(finished):
    jobs, other = _scheduled_both(finished, _edited(_set("sampling", "num_chains", 12)),
                                  _edited(_set("sampling", "num_samples", 60)))
    # NRE samples by MCMC and reads num_chains; NPE samples its flow and does not.
    assert jobs == {"sample": 1, "diagnose": 1, "c2st": 1, "plot_posterior": 1, "report": 1, "all": 1}
    assert other["sample"] == 2 and not {"train", "simulate", "merge_simulations"} & set(other), other


def test_a_training_key_reruns_training_and_downstream_not_simulation(finished):
    jobs, other = _scheduled_both(finished, _edited(_set("training", "num_atoms", 5)),  # NRE-B's only
                                  _edited(_set("training", "hidden_features", 8)))
    assert jobs["train"] == 1 and jobs["sample"] == 1 and jobs["diagnose"] == 1, jobs
    assert other["train"] == 2 and not {"simulate", "merge_simulations", "observe"} & set(other), other


def test_a_new_observation_adds_only_its_own_jobs_and_the_report(finished):
    jobs = _scheduled(finished, _edited(lambda a: a["observations"].append({"name": "o2", "theta": [0.2] * 10})))
    assert jobs == {"observe": 1, "reference_posterior": 1, "sample": 2, "c2st": 2, "plot_posterior": 2,
                    "report": 1, "all": 1}


def test_an_edited_observation_or_reference_file_reruns_what_depends_on_it(finished):
    """Observations read from files, finished by the reference run (see `finished`): edit each file."""
    config, env = _file_analyses(finished), user_env(finished)
    rng = np.random.default_rng(0)
    stamps = {name: (finished / name).stat() for name in ("x_o.npy", "x_o.csv")}

    def as_if_unedited(name: str) -> None:
        os.utime(finished / name, ns=(stamps[name].st_atime_ns, stamps[name].st_mtime_ns))

    np.save(finished / "x_o.npy", rng.normal(size=3).astype(np.float32))  # user_sim: NRE-C, and a simulator
    assert _scheduled(finished, config, env=env) == {"observe": 1, "reference_posterior": 1, "sample": 1, "c2st": 1,
                                                     "plot_posterior": 1, "posterior_predictive": 1, "report": 1,
                                                     "all": 1}
    as_if_unedited("x_o.npy")
    np.savetxt(finished / "x_o.csv", rng.normal(size=(1, 2)), delimiter=",")  # user_files: NPE, a reference file
    assert _scheduled(finished, config, env=env) == {"observe": 1, "reference_posterior": 1, "sample": 1, "c2st": 1,
                                                     "plot_posterior": 1, "report": 1, "all": 1}
    as_if_unedited("x_o.csv")  # both files as if unedited: no second run
    assert _scheduled(finished, config, env=env) == {}
    np.savetxt(finished / "reference.csv", rng.normal(size=(200, 2)), delimiter=",")
    assert _scheduled(finished, config, env=env) == {"reference_posterior": 1, "c2st": 1, "plot_posterior": 1,
                                                     "report": 1, "all": 1}
