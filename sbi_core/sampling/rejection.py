"""Rejection sampling of many observations at once: a proposal's draws kept where they are accepted.

NPE samples its flow this way, rejecting draws outside the prior's support. The batch
sizes follow sbi 0.27's ``accept_reject_sample`` (the first batch ``num_samples``, then
1.5 times the expected need at the worst observation's acceptance rate, 100 to
``max_batch_size``), so that the same seed gives sbi's samples; the accepted draws are
gathered by tensor operations rather than a Python loop over observations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution
from tqdm.auto import tqdm

__all__ = ["rejection_sample", "within_support"]


def rejection_sample(
    propose: Callable[[int], Tensor],
    accept: Callable[[Tensor], Tensor],
    num_samples: int,
    max_batch_size: int = 10_000,
    show_progress: bool = False,
) -> Tensor:
    """The first `num_samples` accepted draws of every observation, in the order drawn.

    Arguments:
        propose: ``n -> [n, M, d]``: n draws for each of M observations.
        accept: ``[n, M, d] -> [n, M]`` booleans. It may raise to stop a loop that cannot
            finish (a proposal whose draws are almost never accepted).
        num_samples: Draws to keep per observation.
        max_batch_size: The most draws per observation in one batch.
        show_progress: A progress bar over the slowest observation's accepted draws.

    Returns:
        ``[num_samples, M, d]``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> samples = rejection_sample(lambda n: torch.randn(n, 3, 1), lambda t: t[..., 0] > 0, 50)
        >>> samples.shape, bool((samples > 0).all())
        (torch.Size([50, 3, 1]), True)
    """
    batch_size = min(num_samples, max_batch_size)
    # As sbi counts it: what is left after each batch's fewest acceptances (no fewer than needed).
    remaining = num_samples
    samples = filled = accepted = None
    drawn = 0
    with tqdm(total=num_samples, disable=not show_progress, desc="rejection sampling") as progress:
        while remaining > 0:
            candidates = propose(batch_size)
            inside = accept(candidates).reshape(candidates.shape[:2])
            if samples is None:
                samples = candidates.new_empty((num_samples, *candidates.shape[1:]))
                filled = torch.zeros(candidates.shape[1], dtype=torch.long, device=candidates.device)
                accepted = torch.zeros(candidates.shape[1], device=candidates.device)
            counts = _append(samples, filled, candidates, inside)
            fewest = int(counts.min())
            remaining -= fewest
            progress.update(fewest)
            drawn += batch_size
            accepted += counts
            worst_rate = max(float((accepted / drawn).min()), 1e-12)
            batch_size = min(max_batch_size, max(int(1.5 * remaining / worst_rate), 100))
    return samples


def _append(samples: Tensor, filled: Tensor, candidates: Tensor, inside: Tensor) -> Tensor:
    """Copies each observation's accepted candidates, in order, after its `filled` draws (both in
    place, `samples` up to its length); returns the number accepted per observation."""
    counts = inside.sum(0)
    # The accepted draws of each observation first, in their order (a stable sort of the rejections).
    order = torch.sort((~inside).to(torch.uint8), dim=0, stable=True).indices
    ordered = candidates.gather(0, order[..., None].expand_as(candidates))
    take = torch.minimum(counts, len(samples) - filled.clamp(max=len(samples)))
    row, column = (torch.arange(len(candidates), device=candidates.device)[:, None] < take).nonzero(as_tuple=True)
    samples[filled[column] + row, column] = ordered[row, column]
    filled += counts
    return counts


def within_support(prior: Distribution, theta: Tensor) -> Tensor:
    """Whether each ``theta [..., d]`` lies inside the prior's support (finite log-density where the
    prior declares no support) -> ``[...]``."""
    try:
        inside = prior.support.check(theta)
    except (NotImplementedError, AttributeError):
        return torch.isfinite(prior.log_prob(theta))
    return inside.all(-1) if inside.shape == theta.shape else inside
