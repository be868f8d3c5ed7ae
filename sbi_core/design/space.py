"""The design space: a box of ``p`` design variables per experiment, ``T`` experiments chosen jointly.

A batch of designs is a tensor ``[D, T, p]``: ``D`` candidate designs, each a static batch
of ``T`` experiments, each experiment ``p`` numbers (a position, a time, a cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sbi_core.errors import ConfigError

__all__ = ["DesignSpace"]


@dataclass(frozen=True, eq=False)
class DesignSpace:
    """A box ``[low, high]`` of design variables per experiment, for ``num_experiments`` experiments.

    Arguments:
        low: Lower corner, one value per design variable (``p``).
        high: Upper corner, strictly above `low` everywhere.
        num_experiments: ``T``, the experiments chosen jointly.
        names: One name per design variable (for tables and plots).

    Example:
        >>> space = DesignSpace.from_bounds([0.0], [24.0], num_experiments=2, names=("t",))
        >>> space.sample(5).shape
        torch.Size([5, 2, 1])
    """

    low: Tensor
    high: Tensor
    num_experiments: int = 1
    names: tuple[str, ...] = ()

    @classmethod
    def from_bounds(
        cls, low: Sequence[float], high: Sequence[float], num_experiments: int = 1,
        names: Sequence[str] | None = None, key: str = "design.space",
    ) -> DesignSpace:
        """Builds a space from lists, refusing bad bounds with `key` named in the message."""
        low_t = torch.as_tensor(low, dtype=torch.float32).reshape(-1)
        high_t = torch.as_tensor(high, dtype=torch.float32).reshape(-1)
        if low_t.shape != high_t.shape or low_t.numel() == 0:
            raise ConfigError(f"{key}: low and high must be lists of the same nonzero length, "
                              f"got {low_t.numel()} and {high_t.numel()} values")
        if not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
            raise ConfigError(f"{key}: low and high must be finite")
        if not (low_t < high_t).all():
            bad = int(torch.nonzero(low_t >= high_t)[0])
            raise ConfigError(f"{key}: low must be below high in every variable; variable {bad} has "
                              f"low {low_t[bad].item():g} >= high {high_t[bad].item():g}")
        if int(num_experiments) < 1:
            raise ConfigError(f"{key}: num_experiments must be at least 1, got {num_experiments}")
        names = tuple(names) if names else tuple(f"xi_{i + 1}" for i in range(low_t.numel()))
        if len(names) != low_t.numel():
            raise ConfigError(f"{key}: {len(names)} names for {low_t.numel()} design variables")
        return cls(low_t, high_t, int(num_experiments), names)

    @property
    def dim(self) -> int:
        """``p``, the design variables per experiment."""
        return int(self.low.numel())

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, p)``, the shape of one design."""
        return (self.num_experiments, self.dim)

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``num`` designs drawn uniformly in the box, ``[num, T, p]``."""
        u = torch.rand(num, *self.shape, generator=generator)
        return self.low + (self.high - self.low) * u

    def clip(self, designs: Tensor) -> Tensor:
        """Projects designs into the box (out of place)."""
        return torch.maximum(torch.minimum(designs, self.high.to(designs)), self.low.to(designs))

    def check(self, designs: Tensor, key: str = "design") -> Tensor:
        """Returns designs as ``[D, T, p]`` float32, refusing a wrong shape or a point outside the box."""
        designs = torch.as_tensor(designs, dtype=torch.float32)
        if designs.ndim == 2 and designs.shape[1:] == (self.dim,) and self.num_experiments == 1:
            designs = designs[:, None, :]
        if designs.ndim != 3 or tuple(designs.shape[1:]) != self.shape:
            raise ConfigError(f"{key}: designs must have shape [D, {self.num_experiments}, {self.dim}] "
                              f"(D designs of T = {self.num_experiments} experiments x p = {self.dim} variables), "
                              f"got {list(designs.shape)}")
        if not torch.isfinite(designs).all():
            raise ConfigError(f"{key}: designs must be finite")
        outside = (designs < self.low) | (designs > self.high)
        if outside.any():
            index = tuple(int(i) for i in torch.nonzero(outside)[0])
            raise ConfigError(f"{key}: design {index[0]} lies outside the box: variable "
                              f"{self.names[index[2]]} = {designs[index].item():g} not in "
                              f"[{self.low[index[2]].item():g}, {self.high[index[2]].item():g}]")
        return designs

    def grid(self, points: int) -> Tensor:
        """Every combination of `points` equally spaced values per variable and experiment,
        ``[points ** (T p), T, p]``: the exhaustive search of low-dimensional spaces."""
        axes = [torch.linspace(float(lo), float(hi), points) for lo, hi in zip(self.low, self.high)]
        axes = axes * self.num_experiments
        mesh = torch.cartesian_prod(*axes) if len(axes) > 1 else axes[0][:, None]
        return mesh.reshape(-1, *self.shape)
