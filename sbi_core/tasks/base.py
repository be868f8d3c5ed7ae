"""The task: a prior, parameter names, and optionally a simulator and an exact posterior."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.errors import SimulationError

__all__ = ["Task", "default_parameter_names"]


def default_parameter_names(dim_theta: int) -> tuple[str, ...]:
    """Returns ``("theta_1", ..., "theta_d")``, the names sbibm uses.

    Example:
        >>> default_parameter_names(2)
        ('theta_1', 'theta_2')
    """
    return tuple(f"theta_{i + 1}" for i in range(dim_theta))


@dataclass(frozen=True, eq=False)
class Task:
    r"""An inference problem: prior, parameter names, simulator, reference posterior.

    Arguments:
        name: The task's name (a builtin name or ``"custom"``).
        prior: The prior :math:`p(\theta)`, float32, event shape ``(d,)``, batch shape ``()``.
        parameter_names: One name per parameter.
        simulator: Maps ``theta [N, d]`` (float32) to ``x [N, ...]``, drawing from
            torch's or numpy's global generator (the caller seeds them). ``None`` when
            the simulations come from files.
        reference_posterior: Maps ``(x_o, num_samples)`` to exact posterior samples
            ``[num_samples, d]``, drawing from torch's global generator. ``x_o`` has the
            simulator's per-row shape. ``None`` when no exact posterior is known.
        observed_data: The data the task ships with (a HistFactory workspace's
            observations), shape ``x_shape``; ``None`` otherwise.
        efficiency: The detection probability per parameter point, mapping
            ``theta [N, d]`` to ``[N]`` values in ``[0, 1]``, differentiable in ``theta``.
            An event at ``theta`` is recorded with this probability; populations are
            thinned by it and unfolding corrects for it. ``None`` means every event is
            recorded. The simulator itself smears every ``theta`` it is given.

    Example:
        >>> from sbi_core.tasks import BUILTIN_TASKS
        >>> task = BUILTIN_TASKS["two_moons"]()
        >>> task.simulate(task.prior.sample((5,))).shape
        torch.Size([5, 2])
    """

    name: str
    prior: Distribution
    parameter_names: tuple[str, ...]
    simulator: Callable[[Tensor], Tensor] | None = None
    reference_posterior: Callable[[Tensor, int], Tensor] | None = None
    observed_data: Tensor | None = None
    efficiency: Callable[[Tensor], Tensor] | None = None

    @property
    def dim_theta(self) -> int:
        """The number of parameters ``d``."""
        return int(self.prior.event_shape[0])

    def simulate(self, theta: Tensor, time_limit: float | None = None) -> Tensor:
        """Runs the simulator on a batch of parameters.

        Arguments:
            theta: Parameters, shape ``[N, d]``.
            time_limit: Seconds the call may take (``simulations.time_limit``); ``None``
                for no limit. Enforced in the main thread (by ``SIGALRM``), whenever the
                simulator's code gives control back to Python.

        Returns:
            The simulations ``x``, float32, shape ``[N, ...]`` (at least 2-d).

        Raises:
            SimulationError: If the task has no simulator, the simulator raises, overruns
                `time_limit`, or returns something other than a tensor/array with ``N`` rows.
        """
        if self.simulator is None:
            raise SimulationError(
                f"task {self.name!r} has no simulator; give one (analysis key 'simulator') "
                "or supply simulation files"
            )
        if theta.ndim != 2 or theta.shape[1] != self.dim_theta:
            raise ValueError(
                f"task {self.name!r}: theta must have shape [N, {self.dim_theta}], "
                f"got {list(theta.shape)}"
            )
        theta = theta.to(torch.float32)
        try:
            with _time_limit(time_limit):
                x = self.simulator(theta)
        except _OverTime:
            raise SimulationError(
                f"task {self.name!r}: the simulator did not return within {time_limit:g} s on "
                f"{len(theta)} rows (simulations.time_limit)"
            ) from None
        except Exception as exc:
            raise SimulationError(
                f"task {self.name!r}: the simulator raised {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, Tensor):
            raise SimulationError(
                f"task {self.name!r}: the simulator must return a torch tensor or numpy "
                f"array, got {type(x).__name__}"
            )
        if x.ndim < 2 or x.shape[0] != theta.shape[0]:
            raise SimulationError(
                f"task {self.name!r}: the simulator must return shape [N, ...] with at "
                f"least 2 dimensions (use [N, 1] for one number per simulation) and "
                f"N = {theta.shape[0]} rows like theta; got {list(x.shape)}"
            )
        if x.is_complex():
            raise SimulationError(
                f"task {self.name!r}: the simulator returned complex values"
            )
        return x.to(torch.float32)


class _OverTime(BaseException):
    """Raised into a simulator that overran its time limit; not an Exception, so that the
    user's own ``except Exception`` does not swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raises :class:`_OverTime` in the block after `seconds`; no limit for None or off the main thread
    (signals reach only the main thread)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _OverTime

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
