"""Devices: refuse a GPU the machine lacks, and give sbi the prior on the device it works on.

Our samplers and limits keep the prior on the CPU (priors are built there, and
:func:`~sbi_core.sampling.prior_log_prob` evaluates them there whatever the
device of theta). sbi instead wants the prior on its training and sampling
device: its trainers check that the prior samples there, and
:class:`~sbi.inference.DirectPosterior` checks samples against the prior's
support on the estimator's device.
"""

from __future__ import annotations

import copy

import torch
from torch.distributions import Distribution

from sbi_core.errors import ConfigError

__all__ = ["require_device", "prior_on_device"]


def require_device(device: str, where: str) -> str:
    """Returns `device` if this machine has it; refuses ``cuda`` without a GPU, naming the key.

    Arguments:
        device: ``cpu``, ``cuda`` or ``cuda:<index>``.
        where: The config key it came from, for the message.

    Example:
        >>> require_device("cpu", "analyses.demo.device")
        'cpu'
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{where}: {device!r} requested but this machine has no CUDA device; use 'cpu'")
    return device


def prior_on_device(prior: Distribution, device: str | torch.device) -> Distribution:
    """Returns the prior on `device`: the prior itself on the CPU, else a moved copy.

    The copy leaves the caller's prior on the CPU. sbi's
    ``move_distribution_to_device`` calls the prior's ``to`` (sbi's priors,
    :class:`~sbi_core.tasks.histfactory.priors.TruncatedNormal`) or rebuilds it
    from its parameters on the device (torch's distributions).

    Arguments:
        prior: A prior on the CPU.
        device: The target device.

    Example:
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> prior_on_device(prior, "cpu") is prior
        True
    """
    if torch.device(device).type == "cpu":
        return prior
    from sbi.utils.user_input_checks_utils import move_distribution_to_device

    return move_distribution_to_device(copy.deepcopy(prior), device)
