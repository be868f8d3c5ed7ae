"""What the benchmarks share: a CUDA-aware timer, a description of the machine they ran on, and the report."""

from __future__ import annotations

import contextlib
import json
import platform
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import numpy as np
import torch

__all__ = ["timer", "environment", "mean_and_sem", "write_report"]


@contextlib.contextmanager
def timer(device: str, into: dict[str, float], key: str) -> Iterator[None]:
    """Stores the wall time of the block in ``into[key]``, synchronising CUDA around it."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize()
    into[key] = time.perf_counter() - start


def environment(device: str) -> dict[str, Any]:
    """Device, its name, torch threads, Python and the versions of the packages compared."""
    versions = {}
    for name in ("sbi_core", "torch", "sbi", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else platform.processor()
    return {"device": device, "device_name": name or platform.machine(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "packages": versions}


def mean_and_sem(values: list[float]) -> tuple[float, float]:
    """The mean of per-observation figures (e.g. C2ST accuracies) and its standard error."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else float("nan")


def write_report(rows: Any, settings: dict[str, Any], device: str, out: str | None) -> None:
    """Prints the rows with the environment and the settings as JSON, and writes them to ``out`` if given."""
    from sbi_core.io import write_json

    report = {"environment": environment(device), "settings": settings, "rows": rows}
    print(json.dumps(report, indent=1))
    if out:
        write_json(out, report)
