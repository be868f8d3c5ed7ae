"""Set-up of a workflow job: its output into the rule's log, torch on the rule's threads."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["start_job"]


def start_job(log_path: str, threads: int) -> None:
    """Sends stdout, stderr and logging to `log_path` and caps torch and BLAS at `threads`.

    sbi prints its training progress to stdout; it belongs in the rule's log too.
    Without the cap, every job would use all of a node's cores whatever the rule
    declared (and SLURM granted), and parallel jobs would oversubscribe them.
    The cap is set through OMP_NUM_THREADS, which torch reads when the step imports it:
    light steps (merging, C2ST, plots, the report) never import torch, which would cost
    each of them 2-3 s of start-up.
    """
    sys.stdout = sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    os.environ["OMP_NUM_THREADS"] = str(max(1, int(threads)))
    if "torch" in sys.modules:  # imported before the job started (not by the workflow's scripts)
        sys.modules["torch"].set_num_threads(max(1, int(threads)))
