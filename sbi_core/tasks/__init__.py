"""Tasks: priors, simulators and exact reference posteriors.

Builtin tasks follow sbibm (Lueckmann et al., 2021); custom tasks take a prior from
the config and a simulator by import path.
"""

from sbi_core.tasks.base import Task, default_parameter_names
from sbi_core.tasks.builtin import BUILTIN_TASKS
from sbi_core.tasks.custom import build_task
from sbi_core.tasks.gaussian_linear import gaussian_linear_posterior
from sbi_core.tasks.priors import prior_from_config
from sbi_core.tasks.user_code import import_callable

__all__ = [
    "Task",
    "BUILTIN_TASKS",
    "build_task",
    "prior_from_config",
    "gaussian_linear_posterior",
    "import_callable",
    "default_parameter_names",
]
