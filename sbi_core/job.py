"""Set-up of a workflow job: its output into the rule's log, torch on the rule's threads."""

from __future__ import annotations

import logging
import sys

__all__ = ["start_job"]


def start_job(log_path: str, threads: int) -> None:
    """Sends stdout, stderr and logging to `log_path` and caps torch at `threads`.

    sbi prints its training progress to stdout; it belongs in the rule's log too.
    Without the cap, every job would use all of a node's cores whatever the rule
    declared (and SLURM granted), and parallel jobs would oversubscribe them.
    """
    sys.stdout = sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    import torch  # after the redirect, so that import-time warnings reach the log

    torch.set_num_threads(max(1, int(threads)))
