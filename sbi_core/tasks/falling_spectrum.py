r"""Falling spectrum: a true energy measured by a calorimeter, with a trigger turn-on.

A 1-d physics closure test for unfolding, the setting where iterative Bayesian
unfolding is the standard: events have a true energy :math:`E` (GeV) and are measured
as :math:`x = E + \sigma(E) z`, :math:`z \sim N(0, 1)`, with the calorimeter resolution

.. math::
    \frac{\sigma(E)}{E} = \frac{a}{\sqrt{E}} \oplus c
    = \sqrt{\frac{a^2}{E} + c^2}, \qquad a = 0.5\ \mathrm{GeV}^{1/2},\ c = 0.05,

a stochastic term and a constant term added in quadrature (no noise term), so the
absolute resolution :math:`\sigma(E) = \sqrt{a^2 E + c^2 E^2}` grows with energy while
the relative one falls. An event is recorded with the probability of a smooth
turn-on, :math:`\epsilon(E) = \epsilon_{max} / (1 + e^{-(E - E_{1/2}) / w})`, which
the task exposes as its ``efficiency``.

References:
    | Calorimetry for particle physics (Fabjan and Gianotti, 2003)
    | Rev. Mod. Phys. 75, 1243, https://doi.org/10.1103/RevModPhys.75.1243
    | A multidimensional unfolding method based on Bayes' theorem (D'Agostini, 1995)
    | Nucl. Instrum. Meth. A 362, 487, https://doi.org/10.1016/0168-9002(95)00274-X
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_core.tasks.base import Task
from sbi_core.tasks.box import BoxUniform

__all__ = [
    "falling_spectrum_task",
    "falling_spectrum_log_likelihood",
    "falling_spectrum_resolution",
    "falling_spectrum_efficiency",
]

# The training prior's energy range, GeV.
ENERGY_MIN = 10.0
ENERGY_MAX = 100.0
# Resolution sigma(E)/E = STOCHASTIC_TERM / sqrt(E) (+) CONSTANT_TERM (quadrature sum).
STOCHASTIC_TERM = 0.5  # GeV^(1/2)
CONSTANT_TERM = 0.05
# Efficiency eps(E) = EFFICIENCY_MAX / (1 + exp(-(E - TURN_ON_ENERGY) / TURN_ON_WIDTH)).
EFFICIENCY_MAX = 0.9
TURN_ON_ENERGY = 20.0  # GeV, where eps = EFFICIENCY_MAX / 2
TURN_ON_WIDTH = 4.0  # GeV
PARAMETER_NAME = "energy"
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def falling_spectrum_resolution(energy: Tensor) -> Tensor:
    r"""Returns the absolute resolution :math:`\sigma(E) = \sqrt{a^2 E + c^2 E^2}`.

    Arguments:
        energy: True energies in GeV (any shape, positive).

    Returns:
        :math:`\sigma(E)` in GeV, same shape and dtype, differentiable.

    Example:
        >>> falling_spectrum_resolution(torch.tensor([100.0]))
        tensor([7.0711])
    """
    return torch.sqrt(STOCHASTIC_TERM**2 * energy + CONSTANT_TERM**2 * energy**2)


def falling_spectrum_efficiency(theta: Tensor) -> Tensor:
    r"""Returns the detection probability :math:`\epsilon(E)` of events at ``theta``.

    :math:`\epsilon(E) = 0.9 / (1 + e^{-(E - 20) / 4})`: a smooth trigger turn-on, half
    of its plateau at 20 GeV, below 0.9 everywhere.

    Arguments:
        theta: True energies, shape ``[N, 1]``.

    Returns:
        The probabilities, shape ``[N]``, in ``(0, 0.9]`` (0.9 is reached only by
        rounding, far above the turn-on), differentiable in ``theta``.

    Raises:
        ValueError: If ``theta`` is not of shape ``[N, 1]``.

    Example:
        >>> falling_spectrum_efficiency(torch.tensor([[20.0]]))
        tensor([0.4500])
    """
    if theta.ndim != 2 or theta.shape[1] != 1:
        raise ValueError(
            f"falling_spectrum efficiency: theta must have shape [N, 1], got {list(theta.shape)}"
        )
    return EFFICIENCY_MAX * torch.sigmoid(
        (theta[:, 0] - TURN_ON_ENERGY) / TURN_ON_WIDTH
    )


def _simulator(theta: Tensor) -> Tensor:
    return theta + falling_spectrum_resolution(theta) * torch.randn_like(theta)


def falling_spectrum_log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Returns the exact :math:`\log N(x_j; E_i, \sigma(E_i)^2)` for all pairs.

    Arguments:
        theta: True energies :math:`E`, shape ``[N, 1]`` (positive).
        x: Measured energies, shape ``[M, 1]``.

    Returns:
        The log-likelihoods, shape ``[N, M]`` (row ``i``: ``theta[i]``; column ``j``:
        ``x[j]``), in the inputs' dtype and differentiable in both. The efficiency is
        not included: this is the density of ``x`` for a recorded event.

    Raises:
        ValueError: If a shape is not as above.

    Example:
        >>> falling_spectrum_log_likelihood(torch.full((3, 1), 50.0), torch.zeros(4, 1)).shape
        torch.Size([3, 4])
    """
    if theta.ndim != 2 or theta.shape[1] != 1:
        raise ValueError(
            f"falling_spectrum_log_likelihood: theta must have shape [N, 1], got {list(theta.shape)}"
        )
    if x.ndim != 2 or x.shape[1] != 1:
        raise ValueError(
            f"falling_spectrum_log_likelihood: x must have shape [M, 1], got {list(x.shape)}"
        )
    sigma = falling_spectrum_resolution(theta[:, 0])[:, None]
    z = (x[:, 0][None, :] - theta[:, 0][:, None]) / sigma
    return -0.5 * z**2 - torch.log(sigma) - _LOG_SQRT_2PI


def falling_spectrum_task() -> Task:
    r"""Returns the falling-spectrum task: prior :math:`U(10, 100)` GeV, calorimeter smearing.

    The parameter is the true energy (named ``energy``); the data are the measured
    energy, shape ``[N, 1]``: :math:`x = E + \sigma(E) z` with
    :math:`\sigma(E)/E = 0.5/\sqrt{E} \oplus 0.05`. The simulator smears every energy
    it is given; the turn-on :math:`\epsilon(E) = 0.9 / (1 + e^{-(E - 20)/4})` is the
    task's ``efficiency``, applied when populations are drawn. The measured energy is
    Gaussian and not clipped, so :func:`falling_spectrum_log_likelihood` is exact (a
    negative measurement would need :math:`z < -6`). No reference posterior is given.

    Returns:
        The task, with an efficiency.

    Example:
        >>> task = falling_spectrum_task()
        >>> task.simulate(task.prior.sample((5,))).shape
        torch.Size([5, 1])

    References:
        | Calorimetry for particle physics (Fabjan and Gianotti, 2003)
        | Rev. Mod. Phys. 75, 1243, https://doi.org/10.1103/RevModPhys.75.1243
    """
    return Task(
        name="falling_spectrum",
        prior=BoxUniform(torch.tensor([ENERGY_MIN]), torch.tensor([ENERGY_MAX])),
        parameter_names=(PARAMETER_NAME,),
        simulator=_simulator,
        efficiency=falling_spectrum_efficiency,
    )
