"""The builtin benchmark tasks, by name.

``gaussian_linear``, ``two_moons`` and ``slcp`` follow sbibm; ``gaussian_smearing`` and
``falling_spectrum`` are 1-d unfolding closure tests with exact likelihoods.

References:
    | Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    | https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

from collections.abc import Callable

from sbi_core.tasks.base import Task
from sbi_core.tasks.falling_spectrum import falling_spectrum_task
from sbi_core.tasks.gaussian_linear import gaussian_linear_task
from sbi_core.tasks.gaussian_smearing import gaussian_smearing_task
from sbi_core.tasks.slcp import slcp_task
from sbi_core.tasks.two_moons import two_moons_task

__all__ = ["BUILTIN_TASKS"]

BUILTIN_TASKS: dict[str, Callable[[], Task]] = {
    "gaussian_linear": gaussian_linear_task,
    "two_moons": two_moons_task,
    "slcp": slcp_task,
    "gaussian_smearing": gaussian_smearing_task,
    "falling_spectrum": falling_spectrum_task,
}
