"""Logging for workflow steps: stderr (progress bars, warnings, tracebacks) into the rule's log."""

from __future__ import annotations

import logging
import sys

__all__ = ["log_to"]


def log_to(path: str) -> None:
    """Sends stderr and the `sbi_core` loggers to `path` (line-buffered, appended)."""
    sys.stderr = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
