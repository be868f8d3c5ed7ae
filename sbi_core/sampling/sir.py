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
from sbi_core.sampling.support import LogRatioModel

__all__ = ["LowEffectiveSampleSizeWarning", "logit_matrix", "sample_sir"]

MAX_PAIRS_PER_CHUNK = 2**18


class LowEffectiveSampleSizeWarning(UserWarning):
    """SIR's importance weights rest on fewer proposals than the samples drawn from them."""


@torch.no_grad()
def logit_matrix(
    network: LogRatioModel, theta: Tensor, x: Tensor, max_pairs_per_chunk: int = MAX_PAIRS_PER_CHUNK
) -> Tensor:
    """Returns :meth:`RatioEstimator.all_pairs` computed in chunks of parameters, without gradients.

    Each chunk of ``n`` parameters evaluates ``n M <= max_pairs_per_chunk`` pairs
    (at least one parameter per chunk).

    Arguments:
        network: The ratio estimator, or any :class:`LogRatioModel`.
        theta: Parameters ``[N, d]``, on the network's device.
        x: Observations ``[M, *x_shape]``, on the network's device.
        max_pairs_per_chunk: The memory bound, in pairs per chunk.

    Returns:
        The logits ``[N, M]``, ``[i, j] = f(theta_i, x_j)``.

    Example:
        >>> network = RatioEstimator(2, [2])
        >>> logit_matrix(network, torch.randn(7, 2), torch.randn(3, 2), max_pairs_per_chunk=4).shape
        torch.Size([7, 3])
    """
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
    max_pairs_per_chunk: int = MAX_PAIRS_PER_CHUNK,
    seed: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Draws posterior samples for ``M`` observations by SIR from one set of prior proposals.

    Arguments:
        network: The trained ratio estimator, or any :class:`LogRatioModel` (its device is used).
        prior: The prior the estimator was trained under (on the CPU).
        x: Observations ``[M, *x_shape]``.
        num_samples: ``S``, samples per observation.
        num_proposals: ``N``, shared prior proposals; ``max(10_000, 10 S)`` by default.
        min_ess: Warn (:class:`LowEffectiveSampleSizeWarning`) when an observation's
            ESS is below this; ``S`` by default, ``0`` to never warn.
        max_pairs_per_chunk: The memory bound of :func:`logit_matrix`.
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
    num_proposals = max(10_000, 10 * num_samples) if num_proposals is None else num_proposals
    if num_proposals < 1:
        raise ValueError(f"num_proposals: expected a positive integer, got {num_proposals}")
    min_ess = float(num_samples) if min_ess is None else float(min_ess)
    if seed is None:
        seed = int(torch.randint(2**31 - 1, ()))
    device = next(network.parameters()).device
    x = x.to(device=device, dtype=torch.float32)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        proposals = prior.sample((num_proposals,)).to(device=device, dtype=torch.float32)
        uniforms = torch.rand(len(x), num_samples, dtype=torch.float64)

    log_weights = logit_matrix(network, proposals, x, max_pairs_per_chunk).T.double()  # [M, N]
    stuck = log_weights.isnan().any(dim=1) | ~log_weights.logsumexp(dim=1).isfinite()
    if stuck.any():
        raise SamplingError(
            f"SIR: {int(stuck.sum())} of {len(x)} observations (first: index {int(stuck.nonzero()[0])}) have "
            f"a NaN log-ratio or none finite over {num_proposals} prior proposals; nothing to resample. "
            "Is x finite and like the training simulations?"
        )
    log_weights = log_weights - log_weights.logsumexp(dim=1, keepdim=True)
    ess = torch.exp(-torch.logsumexp(2 * log_weights, dim=1))
    # Inverse-CDF multinomial resampling: works the same on every device, from CPU uniforms.
    cumulative = log_weights.exp().cumsum(dim=1)
    index = torch.searchsorted(cumulative, uniforms.to(device) * cumulative[:, -1:])
    samples = proposals[index.clamp_(max=num_proposals - 1)]

    low = ess < min_ess
    if low.any():
        warnings.warn(
            f"SIR: the effective sample size is below {min_ess:g} for {int(low.sum())} of {len(x)} "
            f"observations (smallest {ess.min().item():.1f} from {num_proposals} prior proposals); "
            "the samples repeat few distinct points. Raise num_proposals or sample with MCMC.",
            LowEffectiveSampleSizeWarning,
            stacklevel=2,
        )
    return samples, ess
