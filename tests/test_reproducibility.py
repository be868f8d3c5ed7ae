"""Reproducibility of the tiny workflow: a run killed midway leaves no half-written artifact
and resumes; that second run reproduces every number of a first one (checked through
`sbi-core verify`, as a published analysis would be); every artifact carries provenance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import torch
import yaml

from sbi_core.io import read_provenance
from tests.conftest import (
    SAME_THREADS,
    TINY_WORKFLOW,
    run_tiny_workflow,
    snakemake_command,
    summary_numbers,
    workflow_env,
)

SBI_CORE = [sys.executable, "-m", "sbi_core.cli"]
COMPARED_ARRAYS = ("simulations/train.npz", "simulations/test.npz", "observations/o1.npz", "references/o1.npz",
                   "diagnostics/npe/sbc_ranks.npz", "diagnostics/nre/sbc_ranks.npz")


def _leaves(value, prefix: str = ""):
    """(metric path, value) of every number and string in a summary."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}/{key}" if prefix else key)
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        yield prefix, value


def _expected_file(folder: Path, checks: list[dict]) -> Path:
    """An expected file for the tiny workflow's config in `folder`."""
    path = folder / "tiny.expected.yaml"
    path.write_text(yaml.safe_dump({"config": "config.yaml", "analysis": TINY_WORKFLOW, "checks": checks}))
    return path


def _summary(run: Path) -> dict:
    return json.loads((run / "results" / TINY_WORKFLOW / "summary.json").read_text())


def _assert_same_arrays(first: Path, second: Path) -> None:
    for artifact in COMPARED_ARRAYS:
        a, b = (np.load(run / "results" / TINY_WORKFLOW / artifact) for run in (first, second))
        assert a.files == b.files
        for key in set(a.files) - {"provenance"}:  # provenance holds the command line
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{artifact}:{key}")


def test_a_second_run_reproduces_every_number_exactly(tiny_reference_run, interrupted_run):
    """Determinism: the same config and seed on the same machine give identical numbers.

    The second run is the interrupted-and-resumed one; every number of the first
    run's summary is stored with tolerance 0 and checked by `sbi-core verify`, the
    command that checks published analyses. (tests/test_slurm.py compares a third
    run, under SLURM, with the same first run.)
    """
    folder = interrupted_run["folder"]
    stored = summary_numbers(_summary(tiny_reference_run))
    checks = [
        {"metric": metric, "expected": value, **({} if isinstance(value, str) else {"tolerance": 0})}
        for metric, value in _leaves(stored)
    ]
    assert len(checks) > 40  # C2ST, SBC, coverage, TARP and training numbers of both methods
    expected = _expected_file(folder, checks)
    verified = subprocess.run([*SBI_CORE, "verify", str(expected), "--directory", str(folder)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    assert f"{len(checks)} of {len(checks)} checks pass: reproduced" in verified.stdout
    assert verified.stdout.rstrip().endswith("1 of 1 reference analyses reproduced")
    assert summary_numbers(_summary(folder)) == stored
    _assert_same_arrays(tiny_reference_run, folder)
    record = json.loads((folder / "results" / TINY_WORKFLOW / "verify.json").read_text())
    assert record["passed"] is True and record["provenance"]["seed"] == 5


def test_verify_says_plainly_which_numbers_do_not_reproduce(tiny_reference_run, tmp_path):
    summary = _summary(tiny_reference_run)
    accuracy = summary["methods"]["npe"]["c2st"]["o1"]["accuracy"]
    verdict = summary["methods"]["nre"]["coverage"]["verdict"]
    other_verdict = "conservative" if verdict != "conservative" else "overconfident"
    checks = [
        {"metric": "methods/npe/c2st/o1/accuracy", "expected": accuracy + 0.02, "tolerance": 0.05},
        {"metric": "methods/nre/c2st/o1/accuracy", "expected": 0.0, "tolerance": 0.1},
        {"metric": "methods/nre/coverage/verdict", "expected": other_verdict},
        {"metric": "methods/nle/c2st/o1/accuracy", "expected": 0.5, "tolerance": 0.05},
    ]
    expected = _expected_file(tiny_reference_run, checks)
    result = subprocess.run([*SBI_CORE, "verify", str(expected), "--directory", str(tiny_reference_run)],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:-2]}
    assert rows["methods/npe/c2st/o1/accuracy"].endswith("pass")
    assert "FAIL (off by" in rows["methods/nre/c2st/o1/accuracy"]
    assert "FAIL (differs)" in rows["methods/nre/coverage/verdict"] and verdict in rows["methods/nre/coverage/verdict"]
    assert "FAIL (missing from summary.json)" in rows["methods/nle/c2st/o1/accuracy"]
    assert result.stdout.splitlines()[-2:] == ["  1 of 4 checks pass: NOT reproduced", "0 of 1 reference analyses reproduced"]
    assert json.loads((tiny_reference_run / "results" / TINY_WORKFLOW / "verify.json").read_text())["passed"] is False


def test_every_artifact_records_its_provenance(tiny_reference_run):
    results = tiny_reference_run / "results" / TINY_WORKFLOW
    artifacts = [p for p in results.rglob("*") if p.suffix in (".json", ".npz", ".pt", ".nc") and p.name != "verify.json"]
    assert len(artifacts) >= 16  # simulations, observation, estimators, posteriors, diagnostics, summary
    for path in artifacts:
        if path.suffix == ".json":
            record = json.loads(path.read_text())["provenance"]
        elif path.suffix == ".nc":
            record = json.loads(az.from_netcdf(path).posterior.attrs["provenance"])
        else:
            record = read_provenance(path)
        assert record is not None, path
        assert record["seed"] == 5 and len(record["config_hash"]) == 16, path
        assert {"torch", "sbi", "numpy", "snakemake"} <= set(record["packages"]), path
        assert record["git_commit"], path
        assert "snakemake" in record["command"] and "--configfile" in record["command"], path  # the user's command


def _is_temporary(path: Path) -> bool:
    """Whether `path` is an unfinished atomic write (sbi_core.io.atomic_path's hidden temporary file)."""
    return path.name.startswith(".") and ".tmp" in path.name


def _is_whole(path: Path) -> bool:
    """Whether an artifact loads completely, as its reader would (logs and timings aside)."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npz":
            with np.load(path) as arrays:
                for key in arrays.files:
                    arrays[key]
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
        elif path.suffix == ".png":
            data = path.read_bytes()
            return data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND"
        elif path.suffix == ".nc":
            az.from_netcdf(path).posterior.load()
    except Exception:  # any failure to load is what this looks for
        return False
    return True


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> dict:
    """The tiny workflow killed (SIGKILL to Snakemake and its jobs) a second into training,
    then unlocked and resumed with --rerun-incomplete.

    Returns its folder, what existed right after the kill (path -> mtime), whether
    the estimator and summary existed then, and which of those files did not load whole.
    """
    folder = tmp_path_factory.mktemp("interrupted-run")
    results = folder / "results" / TINY_WORKFLOW
    with open(folder / "killed.log", "w") as log:
        process = subprocess.Popen(snakemake_command(folder, "--cores", "2", *SAME_THREADS), stdout=log,
                                   stderr=subprocess.STDOUT, env=workflow_env(), cwd=folder, start_new_session=True)
        try:
            _wait_for(results / "logs" / "train" / "npe.log", process)  # training has started
            time.sleep(1.0)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # no clean-up, as when a node dies
            process.wait()
    killed = {
        "folder": folder,
        "finished": {path: path.stat().st_mtime_ns for path in results.rglob("*") if path.is_file()},
        "estimator_existed": (results / "estimators" / "npe.pt").exists(),
        "summary_existed": (results / "summary.json").exists(),
    }
    # An atomic write the kill interrupted leaves its hidden `.<name>.*.tmp<suffix>` file, never a
    # partial artifact: artifacts are checked whole here, and the test checks the resumed run
    # leaves no such file behind.
    artifacts = [path for path in killed["finished"] if not _is_temporary(path)]
    killed["not_whole"] = [path for path in artifacts if not _is_whole(path)]
    unlocked = run_tiny_workflow(folder, "--unlock")
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    resumed = run_tiny_workflow(folder, "--cores", "2", *SAME_THREADS, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    return killed


def test_a_run_killed_midway_leaves_no_half_written_artifact_and_resumes(tiny_reference_run, interrupted_run):
    folder, finished = interrupted_run["folder"], interrupted_run["finished"]
    results = folder / "results" / TINY_WORKFLOW
    assert not interrupted_run["summary_existed"], "the run finished before it was killed"
    assert not interrupted_run["estimator_existed"], "training finished before the kill"
    assert results / "simulations" / "train.npz" in finished
    assert interrupted_run["not_whole"] == []
    # Finished artifacts were kept, not remade; the rest equals an uninterrupted run's.
    for path in (results / "simulations" / "train.npz", results / "simulations" / "train.json"):
        assert path.stat().st_mtime_ns == finished[path], f"{path} was remade"
    assert summary_numbers(_summary(folder)) == summary_numbers(_summary(tiny_reference_run))
    assert not [p for p in folder.rglob("*") if _is_temporary(p) and ".snakemake" not in p.parts]
