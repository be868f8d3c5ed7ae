"""Logging for workflow steps: stdout and stderr (progress bars, warnings, tracebacks) into the rule's log."""

from __future__ import annotations

import logging
import sys

__all__ = ["log_to"]


def log_to(path: str) -> None:
    """Sends stdout, stderr and logging to `path` (line-buffered, appended).

    sbi prints its training progress to stdout; it belongs in the rule's log too.
    """
    sys.stdout = sys.stderr = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
