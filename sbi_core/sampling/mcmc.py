r"""Batched Markov chains by differential-evolution Metropolis: states ``[M, C, d]``.

Each observation ``x_m`` has ``C`` chains targeting
:math:`\log p(\theta) + f(\theta, x_m)`, the unnormalised log posterior of a
ratio estimator (or of a likelihood estimator: ``f = log q(x | theta)``). A proposal outside the prior's support has target ``-inf``
and is rejected, so the chains never leave it. The chains move in two vectorized
half-steps, one network call on ``[M, C / 2, d]`` each.

A move is differential evolution (ter Braak, 2006): a chain of one half proposes
:math:`\theta + \gamma_m (\theta_a - \theta_b) + \epsilon`, with ``a`` and ``b`` two
distinct chains of the other half (held fixed meanwhile, so the proposal is
symmetric and each half-step leaves the posterior invariant). The difference of two
chains in the same mode has the shape and scale of that mode, so the steps follow
each mode's own covariance: a random walk whose covariance follows the spread of all
chains (the earlier kernel) takes steps as wide as the distance between separated
modes and mixes slowly inside each. Warm-up moves :math:`\log \gamma_m` towards the
acceptance rate 0.234 by Robbins-Monro steps from :math:`2.38 / \sqrt{2 d}`; one
proposal in ten takes :math:`\gamma = 1`, which carries a chain from the mode of
``b`` to the mode of ``a`` when the two have the same shape. After warm-up the
kernel is fixed. Chains start at SIR samples (:func:`sbi_core.sampling.sample_sir`),
which puts them roughly in proportion to the posterior mass of separated modes.

A mode that no chain reached stays empty under these moves. Every
``jump_every``-th step is therefore also an independence Metropolis-Hastings move: the
proposal is drawn from a kernel density estimate on SIR draws for the observation
(16 of them, spread over the modes as SIR found them; Gaussian components with the
chains' covariance at the end of warm-up, narrowed by Scott's factor
:math:`J^{-1/(d + 4)}`), and accepted with probability
:math:`\min(1, \pi(\theta') q(\theta) / (\pi(\theta) q(\theta')))`; a chain can jump
to any mode that SIR found, and the weights of the modes come out right whatever
their share of centres.

References:
    | A Markov chain Monte Carlo version of the genetic algorithm Differential Evolution
    | (ter Braak, 2006) https://doi.org/10.1007/s11222-006-8769-1
    | Ensemble samplers with affine invariance (Goodman & Weare, 2010): the two-halves update
    | https://doi.org/10.2140/camcos.2010.5.65
    | Optimal scaling for various Metropolis-Hastings algorithms (Roberts & Rosenthal, 2001)
    | https://doi.org/10.1214/ss/1015346320
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution
from tqdm import tqdm

from sbi_core.sampling.sir import sample_sir
from sbi_core.sampling.support import LogRatioModel, pairs_per_call, prior_log_prob
from sbi_core.seeding import derive_seed

__all__ = ["sample_mcmc"]

TARGET_ACCEPTANCE = 0.234
# Share of differential-evolution proposals with gamma = 1 (mode to mode).
_MODE_SWAP_SHARE = 0.1
# Weight of the newest cross-chain covariance in the warm-up average.
_COVARIANCE_RATE = 0.1
# Floor of the covariances, and variance of the moves' small jitter, relative to the prior's variances.
_COVARIANCE_FLOOR = 1e-6
_PRIOR_DRAWS = 1000
# SIR draws that centre the jump proposals' mixture, per observation: enough to land in every mode
# SIR found; the acceptance ratio corrects their share. Its cost is chains x centres per jump.
_JUMP_CENTRES = 16
# Jump moves hold at most this many chain-centre differences at once (64 MB in float32).
_MIXTURE_ENTRIES = 2**24


@torch.no_grad()
def sample_mcmc(
    network: LogRatioModel,
    prior: Distribution,
    x: Tensor,
    num_samples: int,
    num_chains: int = 20,
    warmup_steps: int = 100,
    thin: int = 5,
    init_num_proposals: int | None = None,
    jump_every: int | None = 5,
    seed: int | None = None,
    show_progress_bar: bool = False,
) -> Tensor:
    """Draws posterior samples for ``M`` observations with ``C`` Metropolis chains each.

    Arguments:
        network: The trained ratio estimator, or any :class:`LogRatioModel` (its device is used).
        prior: The prior the estimator was trained under (on the CPU).
        x: Observations ``[M, *x_shape]``.
        num_samples: ``S``, samples per observation.
        num_chains: ``C``, chains per observation (at least 4: each half moves by two chains of
            the other); each keeps ``ceil(S / C)`` draws.
        warmup_steps: Adapting steps, discarded.
        thin: Steps between kept draws. Metropolis draws at 0.234 acceptance stay
            correlated over roughly ``3 d`` steps (more than slice-sampling ones,
            hence the default 5, where sbi's slice sampler uses 1); raise it where
            nearly independent draws matter, e.g. SBC in more than two dimensions
            (the workflow's default is ``3 d``: at ``thin=10`` in 10-d, C2ST against
            the exact posterior was 0.57-0.63, at ``thin=30`` 0.50-0.53).
        init_num_proposals: Prior proposals of the SIR that sets the initial states
            and the jump proposals' centres; ``max(1000, 100 C)`` by default.
        jump_every: Steps between independence moves (see above); ``None`` for
            differential-evolution moves only.
        seed: Seeds the initial states and the chains; drawn from torch's global
            generator if omitted.
        show_progress_bar: Whether to show a tqdm bar over the steps.

    Returns:
        The samples ``[M, S, d]``, inside the prior's support.

    Example:
        >>> from sbi.utils import BoxUniform
        >>> network = RatioEstimator(2, [2])
        >>> prior = BoxUniform(-torch.ones(2), torch.ones(2))
        >>> sample_mcmc(network, prior, torch.zeros(3, 2), 40, num_chains=4, warmup_steps=10, seed=0).shape
        torch.Size([3, 40, 2])

    References:
        | An adaptive Metropolis algorithm (Haario et al., 2001)
        | https://doi.org/10.2307/3318737
    """
    for name, value, low in (("num_samples", num_samples, 1), ("num_chains", num_chains, 4),
                             ("warmup_steps", warmup_steps, 0), ("thin", thin, 1),
                             ("jump_every", 1 if jump_every is None else jump_every, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if seed is None:
        seed = int(torch.randint(2**31 - 1, ()))
    device = next(network.parameters()).device
    x = x.to(device=device, dtype=torch.float32)
    num_observations = len(x)
    generator = torch.Generator().manual_seed(seed)

    init, _ = sample_sir(
        network, prior, x, num_chains + _JUMP_CENTRES,
        num_proposals=max(1000, 100 * num_chains) if init_num_proposals is None else init_num_proposals,
        min_ess=0, seed=derive_seed(seed, "mcmc", "init"),
    )  # [M, C + J, d]: the chains' starts, then the jump proposals' centres
    state, centres = init[:, :num_chains], init[:, num_chains:]
    dim = state.shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "mcmc", "prior_scale"))
        prior_variance = prior.sample((_PRIOR_DRAWS,)).to(device=device, dtype=torch.float32).var(0)
    floor = torch.diag(_COVARIANCE_FLOOR * prior_variance.clamp_min(1e-30))

    jitter = (_COVARIANCE_FLOOR * prior_variance.clamp_min(1e-30)).sqrt()

    def log_target(theta: Tensor) -> Tensor:
        group = max(1, pairs_per_call(device) // theta.shape[1])  # observations per network call
        log_ratio = torch.cat([network.per_observation(theta[start:start + group], x[start:start + group])
                               for start in range(0, num_observations, group)])
        return prior_log_prob(prior, theta) + log_ratio

    current = log_target(state)
    covariance = _chain_covariance(state) + floor
    log_scale = torch.full((num_observations,), math.log(2.38 / math.sqrt(2 * dim)), device=device)
    bandwidth = len(centres[0]) ** (-1 / (dim + 4))  # Scott's factor for the jumps' kernel density estimate

    num_kept = math.ceil(num_samples / num_chains)
    kept: list[Tensor] = []
    steps = range(warmup_steps + num_kept * thin)
    for step in tqdm(steps, desc="mcmc", disable=not show_progress_bar):
        state, current, accepted, scaled = _differential_evolution(state, current, log_scale.exp(), jitter,
                                                                   log_target, generator)
        if step == warmup_steps:
            kernel_cholesky = bandwidth * _cholesky(covariance, floor)
        if jump_every is not None and (step + 1) % jump_every == 0:
            if step < warmup_steps:
                kernel_cholesky = bandwidth * _cholesky(covariance, floor)
            state, current = _jump(state, current, centres, kernel_cholesky, log_target, generator)
        if step < warmup_steps:
            rate = 1.0 / math.sqrt(step + 1)
            acceptance = (accepted & scaled).sum(1) / scaled.sum(1).clamp_min(1)
            log_scale += rate * (acceptance - TARGET_ACCEPTANCE)
            covariance = (1 - _COVARIANCE_RATE) * covariance + _COVARIANCE_RATE * (_chain_covariance(state) + floor)
        elif (step - warmup_steps + 1) % thin == 0:
            kept.append(state)
    samples = torch.stack(kept, dim=1)  # [M, kept, C, d]
    return samples.reshape(num_observations, -1, dim)[:, :num_samples]


def _differential_evolution(state: Tensor, current: Tensor, scale: Tensor, jitter: Tensor,
                            log_target: Callable[[Tensor], Tensor],
                            generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One differential-evolution Metropolis move of every chain, in two halves: each chain of a
    half proposes ``theta + gamma (theta_a - theta_b) + jitter * noise`` with ``a != b`` chains of
    the other half, ``gamma`` the observation's ``scale [M]`` or, for a tenth of the proposals, 1.
    Returns the new states and targets, which chains accepted, and which proposals were scaled
    (``[M, C]`` each)."""
    num_observations, num_chains, dim = state.shape
    state, current = state.clone(), current.clone()
    accepted = torch.zeros(num_observations, num_chains, dtype=torch.bool, device=state.device)
    scaled = torch.zeros_like(accepted)
    middle = num_chains // 2
    for moving, other in ((slice(0, middle), slice(middle, None)), (slice(middle, None), slice(0, middle))):
        partners = state[:, other]
        shape = (num_observations, len(state[0, moving]))
        first = torch.randint(partners.shape[1], shape, generator=generator)
        second = torch.randint(partners.shape[1] - 1, shape, generator=generator)
        second = (second + (second >= first).long()).to(state.device)  # distinct from the first
        first = first.to(state.device)
        swap = (torch.rand(shape, generator=generator) < _MODE_SWAP_SHARE).to(state.device)
        gamma = torch.where(swap, torch.ones_like(scale)[:, None], scale[:, None])
        difference = (torch.gather(partners, 1, first[..., None].expand(-1, -1, dim))
                      - torch.gather(partners, 1, second[..., None].expand(-1, -1, dim)))
        noise = torch.randn(*shape, dim, generator=generator).to(state.device)
        proposal = state[:, moving] + gamma[..., None] * difference + jitter * noise
        proposed = log_target(proposal)
        log_u = torch.rand(shape, generator=generator).log().to(state.device)
        accept = log_u < proposed - current[:, moving]
        state[:, moving] = torch.where(accept[..., None], proposal, state[:, moving])
        current[:, moving] = torch.where(accept, proposed, current[:, moving])
        accepted[:, moving], scaled[:, moving] = accept, ~swap
    return state, current, accepted, scaled


def _jump(state: Tensor, current: Tensor, centres: Tensor, cholesky: Tensor, log_target: Callable[[Tensor], Tensor],
          generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One independence Metropolis-Hastings move of every chain: a proposal from the observation's
    mixture of Gaussians ``N(centre_j, L L^T)`` (``centres [M, J, d]``, ``L = cholesky [M, d, d]``),
    accepted by the ratio of target over mixture density."""
    num_observations, num_chains, dim = state.shape
    pick = torch.randint(centres.shape[1], (num_observations, num_chains), generator=generator).to(state.device)
    noise = torch.randn(num_observations, num_chains, dim, generator=generator).to(state.device)
    proposal = torch.gather(centres, 1, pick[..., None].expand(-1, -1, dim)) + torch.einsum("mij,mcj->mci", cholesky, noise)
    proposed = log_target(proposal)
    log_u = torch.rand(num_observations, num_chains, generator=generator).log().to(state.device)
    log_ratio = proposed - current + _mixture_log_density(state, centres, cholesky) - _mixture_log_density(
        proposal, centres, cholesky)
    accept = log_u < log_ratio  # a NaN ratio (both targets -inf) rejects
    return torch.where(accept[..., None], proposal, state), torch.where(accept, proposed, current)


def _mixture_log_density(theta: Tensor, centres: Tensor, cholesky: Tensor) -> Tensor:
    """``log sum_j N(theta; centre_j, L L^T)`` for ``theta [M, C, d]``, up to a constant per
    observation (the same for every theta of the observation, so it cancels in the ratio); in
    groups of observations whose ``[m, C, J, d]`` differences hold at most ``_MIXTURE_ENTRIES``."""
    num_observations, num_chains, dim = theta.shape
    group = max(1, _MIXTURE_ENTRIES // (num_chains * centres.shape[1] * dim))
    parts = []
    for start in range(0, num_observations, group):
        part = slice(start, start + group)
        differences = (theta[part, :, None] - centres[part, None]).reshape(len(theta[part]), -1, dim)
        whitened = torch.linalg.solve_triangular(cholesky[part], differences.mT, upper=False)  # [m, d, C J]
        squared = whitened.pow(2).sum(1).reshape(len(theta[part]), num_chains, centres.shape[1])
        parts.append(torch.logsumexp(-0.5 * squared, dim=2))
    return torch.cat(parts)


def _chain_covariance(state: Tensor) -> Tensor:
    """The covariance across the chains of each observation, ``[M, C, d] -> [M, d, d]``."""
    centered = state - state.mean(dim=1, keepdim=True)
    return centered.transpose(1, 2) @ centered / max(1, state.shape[1] - 1)


def _cholesky(covariance: Tensor, floor: Tensor) -> Tensor:
    """Cholesky factors ``[M, d, d]``, adding the floor until each covariance is positive definite."""
    factor, info = torch.linalg.cholesky_ex(covariance)
    jitter = floor
    while bool((info > 0).any()):
        covariance = covariance + jitter
        jitter = 10 * jitter
        factor, info = torch.linalg.cholesky_ex(covariance)
    return factor
