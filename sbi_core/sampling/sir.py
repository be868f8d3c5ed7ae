r"""Sampling-importance-resampling (SIR) from the prior, for many observations at once.

With prior proposals :math:`\theta_1, \dots, \theta_N` the importance weight of
:math:`\theta_i` for observation :math:`x_j` is the ratio
:math:`r(\theta_i, x_j) = e^{f(\theta_i, x_j)}`, so one ``[N, M]`` logit matrix
(:meth:`RatioEstimator.all_pairs`, in chunks) weighs one shared set of proposals
for all ``M`` observations. Each observation then resamples ``S`` of them with
replacement, with probabilities ``softmax_i f(theta_i, x_j)``.

The effective sample size :math:`\mathrm{ESS}_j = 1 / \sum_i w_{ij}^2` counts how
many proposals carry the weight. Below ``S`` the ``S`` resampled points are
mostly repeats of fewer distinct ones, and the samples look narrower than the
posterior; a :class:`LowEffectiveSampleSizeWarning` says so. SIR suits low
dimensions and posteriors that are not much narrower than the prior; otherwise
use MCMC (:func:`sbi_core.sampling.sample_mcmc`), which SIR initialises.

References:
    | Using the SIR algorithm to simulate posterior distributions (Rubin, 1988)
    | Bayesian Statistics 3, 395-402
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.errors import SamplingError
from sbi_core.sampling.support import LogRatioModel, pairs_per_call
from sbi_core.seeding import derive_seed

__all__ = ["LowEffectiveSampleSizeWarning", "logit_matrix", "sample_sir"]

# At most this many log-weights (float64) are held at once: 256 MB, whatever the number of observations.
MAX_LOG_WEIGHTS = 2**25


class LowEffectiveSampleSizeWarning(UserWarning):
    """SIR's importance weights rest on fewer proposals than the samples drawn from them."""


@torch.no_grad()
def logit_matrix(
    network: LogRatioModel, theta: Tensor, x: Tensor, max_pairs_per_chunk: int | None = None
) -> Tensor:
    """Returns :meth:`RatioEstimator.all_pairs` computed in chunks of parameters, without gradients.

    Each chunk of ``n`` parameters evaluates ``n M <= max_pairs_per_chunk`` pairs
    (at least one parameter per chunk).

    Arguments:
        network: The ratio estimator, or any :class:`LogRatioModel`.
        theta: Parameters ``[N, d]``, on the network's device.
        x: Observations ``[M, *x_shape]``, on the network's device.
        max_pairs_per_chunk: Pairs per chunk; by default what suits theta's device
            (:func:`~sbi_core.sampling.support.pairs_per_call`).

    Returns:
        The logits ``[N, M]``, ``[i, j] = f(theta_i, x_j)``.

    Example:
        >>> network = RatioEstimator(2, [2])
        >>> logit_matrix(network, torch.randn(7, 2), torch.randn(3, 2), max_pairs_per_chunk=4).shape
        torch.Size([7, 3])
    """
    if max_pairs_per_chunk is None:
        max_pairs_per_chunk = pairs_per_call(theta.device)
    chunk = max(1, max_pairs_per_chunk // max(1, len(x)))
    return torch.cat([network.all_pairs(part, x) for part in theta.split(chunk)])


@torch.no_grad()
def sample_sir(
    network: LogRatioModel,
    prior: Distribution,
    x: Tensor,
    num_samples: int,
    num_proposals: int | None = None,
    min_ess: float | None = None,
    max_proposals: int | None = None,
    max_pairs_per_chunk: int | None = None,
    seed: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Draws posterior samples for ``M`` observations by SIR from shared prior proposals, adding
    proposals where an observation's effective sample size is too low.

    All observations first weigh ``num_proposals`` shared prior draws. An observation
    whose ESS is below ``min_ess`` then weighs as many fresh prior draws again, and again
    (doubling its proposals), until its ESS reaches ``min_ess`` or its proposals reach
    ``max_proposals``; it resamples from all the proposals it weighed (all are prior
    draws, so this is plain SIR with more proposals). Observations are taken in groups
    whose ``[observations, max_proposals]`` log-weight matrix holds at most
    ``MAX_LOG_WEIGHTS`` entries, so memory does not grow with ``M``.

    Arguments:
        network: The trained ratio estimator, or any :class:`LogRatioModel` (its device is used).
        prior: The prior the estimator was trained under (on the CPU).
        x: Observations ``[M, *x_shape]``.
        num_samples: ``S``, samples per observation.
        num_proposals: ``N``, the first shared prior proposals; ``max(10_000, 10 S)`` by default
            (at most ``max_proposals``).
        min_ess: The effective sample size to reach (``S`` by default, ``0`` to add no proposals
            and never warn); an observation still below it at ``max_proposals`` is warned about
            (:class:`LowEffectiveSampleSizeWarning`).
        max_proposals: The most proposals one observation weighs; ``max(N, 2^20)`` by default.
        max_pairs_per_chunk: Pairs per network call in :func:`logit_matrix` (by default the device's).
        seed: Seeds the proposals and the resampling; drawn from torch's global
            generator if omitted.

    Returns:
        The samples ``[M, S, d]`` and the effective sample sizes ``[M]`` (float64).

    Raises:
        SamplingError: An observation has no proposal of finite log-ratio, or a NaN one:
            there is nothing to resample from (e.g. a NaN/inf x).

    Example:
        >>> from sbi.utils import BoxUniform
        >>> network = RatioEstimator(2, [2])
        >>> prior = BoxUniform(-torch.ones(2), torch.ones(2))
        >>> samples, ess = sample_sir(network, prior, torch.zeros(3, 2), 100, seed=0)
        >>> samples.shape, ess.shape
        (torch.Size([3, 100, 2]), torch.Size([3]))

    References:
        | Using the SIR algorithm to simulate posterior distributions (Rubin, 1988)
        | Bayesian Statistics 3, 395-402
    """
    if num_samples < 1:
        raise ValueError(f"num_samples: expected a positive integer, got {num_samples}")
    if num_proposals is None:
        num_proposals = max(10_000, 10 * num_samples)
        if max_proposals is not None:
            num_proposals = min(num_proposals, max_proposals)
    if num_proposals < 1:
        raise ValueError(f"num_proposals: expected a positive integer, got {num_proposals}")
    max_proposals = max(num_proposals, 2**20) if max_proposals is None else max_proposals
    if max_proposals < num_proposals:
        raise ValueError(f"max_proposals: expected at least num_proposals = {num_proposals}, got {max_proposals}")
    min_ess = float(num_samples) if min_ess is None else float(min_ess)
    if seed is None:
        seed = int(torch.randint(2**31 - 1, ()))
    device = next(network.parameters()).device
    x = x.to(device=device, dtype=torch.float32)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        first = prior.sample((num_proposals,)).to(device=device, dtype=torch.float32)
        uniforms = torch.rand(len(x), num_samples, dtype=torch.float64)
    rounds = _ProposalRounds(prior, first, max_proposals, seed)

    group = max(1, MAX_LOG_WEIGHTS // max_proposals)
    samples, ess = [], []
    for start in range(0, len(x), group):
        part = slice(start, start + group)
        log_weights, group_ess = _weigh(network, rounds, x[part], min_ess, max_pairs_per_chunk, start)
        ess.append(group_ess)
        # Inverse-CDF multinomial resampling: works the same on every device, from CPU uniforms.
        cumulative = log_weights.exp().cumsum(dim=1)
        index = torch.searchsorted(cumulative, uniforms[part].to(device) * cumulative[:, -1:])
        samples.append(rounds.all[index.clamp_(max=log_weights.shape[1] - 1)])
    ess = torch.cat(ess)

    low = ess < min_ess
    if low.any():
        warnings.warn(
            f"SIR: the effective sample size is below {min_ess:g} for {int(low.sum())} of {len(x)} "
            f"observations (smallest {ess.min().item():.1f} from up to {max_proposals} prior proposals); "
            "the samples repeat few distinct points. Raise max_proposals or sample with MCMC.",
            LowEffectiveSampleSizeWarning,
            stacklevel=2,
        )
    return torch.cat(samples), ess


class _ProposalRounds:
    """Prior proposals drawn round by round, shared by every observation: the first ``N``, then
    as many again each round (``N``, ``2 N``, ``4 N``... in all) up to ``max_proposals``."""

    def __init__(self, prior: Distribution, first: Tensor, max_proposals: int, seed: int) -> None:
        self.prior, self.max_proposals, self.seed = prior, max_proposals, seed
        self.all = first  # every round drawn so far, in order
        self.ends = [len(first)]  # where each round ends in `all`

    def round(self, index: int) -> Tensor | None:
        """Round ``index`` (drawn on first use, seeded by the round), or None past ``max_proposals``."""
        while len(self.ends) <= index:
            size = min(len(self.all), self.max_proposals - len(self.all))
            if size <= 0:
                return None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(self.seed, "sir", len(self.ends)))
                draws = self.prior.sample((size,))
            self.all = torch.cat([self.all, draws.to(device=self.all.device, dtype=torch.float32)])
            self.ends.append(len(self.all))
        return self.all[(self.ends[index - 1] if index else 0) : self.ends[index]]


def _weigh(network: LogRatioModel, rounds: _ProposalRounds, x: Tensor, min_ess: float, max_pairs_per_chunk: int | None,
           offset: int) -> tuple[Tensor, Tensor]:
    """Normalised log-weights ``[m, proposals]`` of a group of observations, and their ESS ``[m]``:
    the first round for all, later rounds for those still below ``min_ess`` (``-inf`` for the others)."""
    first = rounds.round(0)
    log_weights = logit_matrix(network, first, x, max_pairs_per_chunk).T.double()
    _refuse_stuck(log_weights, offset, len(first))
    index = 1
    while True:
        normalised = log_weights - log_weights.logsumexp(dim=1, keepdim=True)
        ess = torch.exp(-torch.logsumexp(2 * normalised, dim=1))
        need = ess < min_ess
        proposals = rounds.round(index) if need.any() else None
        if proposals is None:
            return normalised, ess
        more = torch.full((len(x), len(proposals)), -torch.inf, dtype=torch.float64, device=x.device)
        more[need] = logit_matrix(network, proposals, x[need], max_pairs_per_chunk).T.double()
        log_weights = torch.cat([log_weights, more], dim=1)
        index += 1


def _refuse_stuck(log_weights: Tensor, offset: int, num_proposals: int) -> None:
    """Raises if an observation of the group starting at index ``offset`` has nothing to resample."""
    stuck = log_weights.isnan().any(dim=1) | ~log_weights.logsumexp(dim=1).isfinite()
    if stuck.any():
        raise SamplingError(
            f"SIR: {int(stuck.sum())} of {len(log_weights)} observations (first: index "
            f"{offset + int(stuck.nonzero()[0])}) have "
            f"a NaN log-ratio or none finite over {num_proposals} prior proposals; nothing to resample. "
            "Is x finite and like the training simulations?"
        )
