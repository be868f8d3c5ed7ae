"""Builds the task of an analysis config: a builtin by name, or a custom prior and simulator."""

from __future__ import annotations

import dataclasses

from typing import Any

from sbi_core.errors import ConfigError
from sbi_core.tasks.base import Task, default_parameter_names
from sbi_core.tasks.builtin import BUILTIN_TASKS
from sbi_core.tasks.priors import prior_from_config
from sbi_core.tasks.user_code import import_callable

__all__ = ["build_task", "import_callable"]

def build_task(analysis: dict[str, Any], where: str) -> Task:
    """Builds the task an analysis config asks for.

    ``analysis["task"]`` is a builtin name (``gaussian_linear``, ``two_moons``,
    ``slcp``), ``"histfactory"`` (a pyhf workspace, the ``histfactory`` block, see
    :func:`~sbi_core.tasks.histfactory.build_histfactory`) or ``"custom"``. A custom task needs ``prior`` (see
    :func:`prior_from_config`) and may name a ``simulator``
    (``"package.module:function"``); without one, simulations must come from files.
    ``parameter_names`` is optional for both (default: the builtin task's names, else
    ``theta_1, ..., theta_d``).
    Builtin tasks refuse ``prior`` and ``simulator`` keys, which they would ignore.

    Arguments:
        analysis: One analysis of the config.
        where: Its dotted config key, e.g. ``"analyses.demo"``, for error messages.

    Returns:
        The task.

    Raises:
        ConfigError: Naming the offending key.

    Example:
        >>> build_task({"task": "two_moons"}, "analyses.demo").parameter_names
        ('theta_1', 'theta_2')
    """
    if not isinstance(analysis, dict):
        raise ConfigError(f"{where}: expected a mapping, got {analysis!r}")
    valid = ", ".join([*BUILTIN_TASKS, "histfactory", "custom"])
    if "task" not in analysis:
        raise ConfigError(f"{where}.task: required; one of {valid}")
    name = analysis["task"]
    if name != "histfactory" and "histfactory" in analysis:
        raise ConfigError(f"{where}.histfactory: only for task: histfactory (this analysis has task {name!r})")
    if name == "histfactory":
        for key in ("prior", "simulator", "parameter_names"):
            if key in analysis:
                raise ConfigError(
                    f"{where}.{key}: a histfactory task takes its {key.replace('_', ' ')} from the workspace; "
                    "remove this key (priors: histfactory.priors; inferred parameters: histfactory.parameters)"
                )
        if "histfactory" not in analysis:
            raise ConfigError(f"{where}.histfactory: required for task 'histfactory' ({{workspace: file.json}})")
        from sbi_core.tasks.histfactory import build_histfactory_task  # pyhf: only for this task

        return build_histfactory_task(analysis["histfactory"], f"{where}.histfactory")
    if name == "custom":
        if "prior" not in analysis:
            raise ConfigError(
                f"{where}.prior: required for task 'custom' (e.g. "
                "{type: box_uniform, low: [...], high: [...]})"
            )
        prior = prior_from_config(analysis["prior"], f"{where}.prior")
        simulator = (
            import_callable(analysis["simulator"], f"{where}.simulator")
            if "simulator" in analysis
            else None
        )
        task = Task(name="custom", prior=prior, parameter_names=(), simulator=simulator)
    elif isinstance(name, str) and name in BUILTIN_TASKS:
        for key in ("prior", "simulator"):
            if key in analysis:
                raise ConfigError(
                    f"{where}.{key}: task {name!r} has a fixed {key}; remove this key, "
                    "or use task: custom to give your own"
                )
        task = BUILTIN_TASKS[name]()
    else:
        raise ConfigError(
            f"{where}.task: unknown task {name!r}; expected one of {valid}"
        )
    names = _parameter_names(
        analysis.get("parameter_names"), task.dim_theta, f"{where}.parameter_names"
    ) if "parameter_names" in analysis or not task.parameter_names else task.parameter_names
    return dataclasses.replace(task, parameter_names=names)


def _parameter_names(names: Any, dim_theta: int, where: str) -> tuple[str, ...]:
    if names is None:
        return default_parameter_names(dim_theta)
    if not isinstance(names, (list, tuple)) or not all(
        isinstance(n, str) and n for n in names
    ):
        raise ConfigError(
            f"{where}: expected a list of non-empty strings, got {names!r}"
        )
    if len(names) != dim_theta:
        raise ConfigError(
            f"{where}: expected {dim_theta} names (the prior's dimension), got {len(names)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: names must be unique, got {names!r}")
    return tuple(names)
