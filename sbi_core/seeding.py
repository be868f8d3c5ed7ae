"""Reproducible seeds: every rule and shard gets its own stream from one analysis seed.

Streams are derived with :class:`numpy.random.SeedSequence` and a spawn key built
from the stream's names, so a shard's seed does not depend on how many other
shards or rules exist.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["derive_seed", "seed_everything"]


def derive_seed(seed: int, *stream: str | int) -> int:
    """Returns a 32-bit seed for the named stream of an analysis seed.

    Arguments:
        seed: The analysis seed.
        stream: Names or indices of the stream, e.g. ``("simulate", "train", 3)``.

    Example:
        >>> derive_seed(1, "simulate", "train", 0) == derive_seed(1, "simulate", "train", 0)
        True
    """
    key = tuple(s if isinstance(s, int) else zlib.crc32(s.encode()) for s in stream)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seeds torch and numpy's global generators (simulators may use either)."""
    import torch  # here, not at import: steps that only derive seeds (C2ST) do not load torch

    torch.manual_seed(seed)
    np.random.seed(seed)
