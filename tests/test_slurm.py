"""A real single-node SLURM cluster runs the tiny analysis through workflow/profiles/slurm.

The cluster (munge, slurmctld, slurmd from Debian's packages, no cgroups, no
accounting) is started by tests/cluster/start-single-node.sh, which needs root
and apt-get: CI has both. The same analysis also runs locally (the shared
reference run); every number up to NPE's calibration must agree, and SLURM must
have run the jobs (job ids, their COMPLETED states in scontrol, and the plugin's
per-job logs).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import (
    REPO, SAME_THREADS, SLURM_STATE, TINY_WORKFLOW, can_start_slurm, run_tiny_workflow, slurm_is_up, start_slurm,
    stop_slurm, summary_numbers,
)

pytestmark = pytest.mark.skipif(not can_start_slurm(), reason="starting a SLURM cluster needs root and apt-get (as in CI)")

# Up to NPE's calibration and posterior: simulate x2, then train, sample and diagnose;
# merge_simulations and observe are localrules. (NRE's jobs would be the same kinds, at a minute's cost.)
TARGETS = (f"results/{TINY_WORKFLOW}/diagnostics/npe/calibration.json", f"results/{TINY_WORKFLOW}/posteriors/npe/o1.nc")
SLURM_JOBS = 5
SLURM_RULES = ("simulate", "train", "sample", "diagnose")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The session's cluster (tests/conftest.py's `pytest_sessionstart`), started here where SLURM
    was not installed yet; it stops when the whole session ends. Without the session's state
    folder (this module run on its own under a plugin that skips the hook), a cluster of its own."""
    own = SLURM_STATE not in os.environ
    state = tmp_path_factory.mktemp("slurm-state") if own else Path(os.environ[SLURM_STATE])
    if not slurm_is_up(state):
        started = start_slurm(state)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    yield state
    if own:
        stop_slurm(state)


def test_tiny_analysis_under_slurm_matches_a_local_run(cluster, tiny_reference_run, tmp_path):
    # A cpu analysis asks for no GPU; this 2-CPU node gets small memory requests and one
    # thread (so one CPU) per job.
    small = [f"{rule}:mem_mb=1000" for rule in SLURM_RULES]
    remote = run_tiny_workflow(
        tmp_path, "--profile", str(REPO / "workflow/profiles/slurm"), "--jobs", "4", *SAME_THREADS,
        "--set-resources", *small, "--default-resources", "slurm_partition=debug", "mem_mb=1000", "runtime=30",
        "--seconds-between-status-checks", "1", "--slurm-init-seconds-before-status-checks", "1", *TARGETS,
    )
    output = remote.stdout + remote.stderr
    assert remote.returncode == 0, output[-4000:]

    job_ids = sorted(set(re.findall(r"SLURM jobid (\d+)", output)))
    assert len(job_ids) == SLURM_JOBS, output[-3000:]
    for job_id in job_ids:
        state = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        assert "JobState=COMPLETED" in state, state
        assert "NumCPUs=1" in state, state  # cpus-per-task follows the rule's (capped) threads
        assert "gpu" not in state.lower(), state  # device: cpu, so no GPU request
    slurm_logs = list((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(slurm_logs) >= len(job_ids)

    results = [folder / "results" / TINY_WORKFLOW for folder in (tiny_reference_run, tmp_path)]
    local_calibration, slurm_calibration = (
        summary_numbers(json.loads((r / "diagnostics" / "npe" / "calibration.json").read_text())) for r in results
    )
    assert slurm_calibration == local_calibration  # SBC, coverage, TARP, C2ST: every number
    for artifact in ("simulations/train.npz", "simulations/test.npz", "diagnostics/npe/sbc_ranks.npz"):
        local_arrays, slurm_arrays = (np.load(r / artifact) for r in results)
        for key in set(local_arrays.files) - {"provenance"}:  # provenance holds the command line
            np.testing.assert_array_equal(local_arrays[key], slurm_arrays[key], err_msg=f"{artifact}:{key}")
