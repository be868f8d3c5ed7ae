"""What the benchmarks share: a CUDA-aware timer and a description of the machine they ran on."""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import torch

__all__ = ["timer", "environment"]


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
