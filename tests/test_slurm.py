"""A real single-node SLURM cluster runs the tiny analysis through workflow/profiles/slurm.

The cluster (munge, slurmctld, slurmd from Debian's packages, no cgroups, no
accounting) is started by tests/cluster/start-single-node.sh, which needs root
and apt-get: CI has both. The same analysis also runs locally; every number
must agree, and SLURM must have run the jobs (job ids, their COMPLETED states
in scontrol, and the plugin's per-job logs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, TINY_TRAINING

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("apt-get") is None,
    reason="starting a SLURM cluster needs root and apt-get (as in CI)",
)

CLUSTER = REPO / "tests" / "cluster"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
CONFIG = {
    "targets": ["tiny_slurm"],
    "analyses": {
        "tiny_slurm": {
            "task": "gaussian_linear",
            "seed": 5,
            "simulations": {"train": 400, "test": 20},
            "methods": ["npe"],
            "observations": [{"name": "o1", "theta": [0.1] * 10}],
            "training": TINY_TRAINING,
            "sampling": {"num_samples": 50},
            "diagnostics": {"num_simulations": 20, "num_samples": 20, "c2st_num_samples": 50,
                            "ppc_num_simulations": 20},
        }
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    env = {**os.environ, "STATE": str(state)}
    started = subprocess.run(["bash", str(CLUSTER / "start-single-node.sh")], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    yield state
    subprocess.run(["bash", str(CLUSTER / "stop-single-node.sh")], env=env, capture_output=True)


def _run(folder: Path, *options: str) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    # One torch thread in both runs, so that sums are taken in the same order.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "USER": os.environ.get("USER", "root"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = ["timeout", "-k", "30", "600", *SNAKEMAKE, "--directory", str(folder),
               "--configfile", str(folder / "config.yaml"), *options]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)


def _numbers(summary: dict) -> dict:
    """Everything in summary.json but timings and provenance."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "seconds" not in k and k != "provenance"}
        return value
    return strip(summary)


def test_tiny_analysis_under_slurm_matches_a_local_run(cluster, tmp_path):
    local = _run(tmp_path / "local", "--cores", "2")
    assert local.returncode == 0, local.stderr[-4000:]
    # The CLI's set-resources replaces the profile's block: no GPU and 1 CPU per job on this 2-CPU node.
    remote = _run(
        tmp_path / "slurm", "--profile", str(REPO / "workflow/profiles/slurm"), "--jobs", "4",
        "--seconds-between-status-checks", "1", "--slurm-init-seconds-before-status-checks", "1",
        "--set-resources", "train:runtime=30", "--default-resources", "slurm_partition=debug", "mem_mb=1000",
        "runtime=30", "cpus_per_task=1",
    )
    output = remote.stdout + remote.stderr
    assert remote.returncode == 0, output[-4000:]

    job_ids = sorted(set(re.findall(r"SLURM jobid (\d+)", output)))
    # simulate x2, train, sample, diagnose, posterior_predictive; the light rules are localrules
    assert len(job_ids) == 6, output[-3000:]
    for job_id in job_ids:
        state = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        assert "JobState=COMPLETED" in state, state
        assert "gpu" not in state.lower(), state  # the test's set-resources dropped the profile's GPU request
    slurm_logs = list((tmp_path / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(slurm_logs) >= len(job_ids)

    results = {name: tmp_path / name / "results" / "tiny_slurm" for name in ("local", "slurm")}
    summaries = [_numbers(json.loads((r / "summary.json").read_text())) for r in results.values()]
    assert summaries[0] == summaries[1]
    for artifact in ("simulations/train.npz", "simulations/test.npz", "diagnostics/npe/sbc_ranks.npz"):
        local_arrays, slurm_arrays = (np.load(r / artifact) for r in results.values())
        for key in local_arrays.files:
            np.testing.assert_array_equal(local_arrays[key], slurm_arrays[key], err_msg=f"{artifact}:{key}")
