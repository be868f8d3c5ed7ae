"""The box-uniform prior of the built-in tasks, without importing ``sbi.utils``.

It is sbi's ``BoxUniform`` (an ``Independent(Uniform)`` in float32 with ``low``, ``high``,
``device`` and an in-place ``to``), which sbi and our code treat alike. Importing
``sbi.utils`` pulls in scipy.stats and scikit-learn, about as long as torch itself: every
Snakemake start (its config check builds the task) and every workflow job that builds a
task paid it, though most of them never touch sbi.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Independent, Uniform

__all__ = ["BoxUniform"]


class BoxUniform(Independent):
    """Uniform on the box ``[low, high)``: one event of ``len(low)`` dimensions, float32.

    Example:
        >>> prior = BoxUniform(torch.zeros(2), torch.ones(2))
        >>> prior.log_prob(torch.tensor([[0.5, 0.5], [2.0, 0.5]]))
        tensor([0., -inf])
    """

    def __init__(self, low: Tensor, high: Tensor, device: str | torch.device | None = None) -> None:
        device = torch.device(low.device if device is None else device)
        self.device = str(device)
        self.low = torch.as_tensor(low, dtype=torch.float32, device=device)
        self.high = torch.as_tensor(high, dtype=torch.float32, device=device)
        super().__init__(Uniform(self.low, self.high, validate_args=False), 1, validate_args=False)

    def to(self, device: str | torch.device) -> None:
        """Moves the prior to `device` in place (as sbi's priors do; sbi's device handling calls it)."""
        validate_args = self._validate_args
        self.__init__(self.low, self.high, device)
        self._validate_args = validate_args
