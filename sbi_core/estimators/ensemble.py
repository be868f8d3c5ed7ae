r"""An ensemble: K estimators of one method, trained with independent seeds, as one estimator.

Its log-ratio is the log of the members' mean ratio,

.. math:: \log r(\theta, x) = \log \frac{1}{K} \sum_k r_k(\theta, x),

so its posterior is the equal mixture of the members' posteriors: where the members
disagree, it is wider than any of them, which is what a single overconfident
estimator lacks (Hermans et al., 2022). For NPE and NLE each member is a normalised
density (in theta, resp. x), so the mean is taken as is. A ratio classifier's logit
is a log-ratio only up to a function of x (NRE-B's contrastive loss cannot see
:math:`c(x)`; the others identify it only at the optimum), so each ratio member is
first normalised per observation, :math:`E_{p(\theta)}[r_k(\theta, x)] = 1`, by
``NORMALISER_DRAWS`` fixed prior draws; an observation whose normaliser rests on few of
them (effective sample size below ``MIN_NORMALISER_ESS``: a posterior much narrower than
the prior) is warned about, once per estimator. The normalisers are cached per observation,
so a sampler calling the log-ratio step after step, on its observations group after group, pays
for each observation's once.

The members' spread is part of the answer: :meth:`EnsembleEstimator.member_log_ratios`
gives each member's (normalised) log-ratio, and training reports each member's loss.

References:
    | A Trust Crisis In Simulation-Based Inference? Your Posterior Approximations Can Be
    | Unfaithful (Hermans et al., 2022) https://arxiv.org/abs/2110.06581
    | Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles
    | (Lakshminarayanan et al., 2017) https://arxiv.org/abs/1612.01474
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from sbi_core.estimators.base import Estimator
from sbi_core.estimators.posterior import PosteriorEstimate
from sbi_core.sampling.support import pairs_per_call

__all__ = ["EnsembleEstimator", "LowNormaliserSampleSizeWarning", "NORMALISER_DRAWS"]

NORMALISER_DRAWS = 2**14
MIN_NORMALISER_ESS = 20.0
MAX_CACHED_NORMALISERS = 2**16  # observations; the cache starts afresh beyond (K floats and a key each)


class LowNormaliserSampleSizeWarning(UserWarning):
    """A ratio member's normaliser rests on few prior draws: the posterior is far narrower than the prior."""


class EnsembleEstimator(Estimator):
    r"""K trained estimators of one method as one :class:`~sbi_core.estimators.Estimator`.

    Arguments:
        members: The trained estimators (one method, one architecture), on one device.
        bootstrap: Whether each member was trained on a bootstrap resample of the
            simulations (recorded in the hyperparameters).

    Attributes:
        members: The member estimators; their networks are this estimator's ``network``
            (an ``nn.ModuleList``), so :meth:`save` stores all of them in one state dict.

    Example:
        >>> from sbi_core.estimators import NREEstimator
        >>> from sbi_core.ratio import RatioEstimator
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> members = [NREEstimator.from_network(RatioEstimator(2, [3]), "nre", prior) for _ in range(3)]
        >>> ensemble = EnsembleEstimator(members)
        >>> ensemble.log_ratio(torch.randn(5, 2), torch.randn(4, 3)).shape, ensemble.num_members
        (torch.Size([5, 4]), 3)
    """

    def __init__(self, members: Sequence[Estimator], bootstrap: bool = False):
        members = list(members)
        if not members:
            raise ValueError("members: an ensemble needs at least one estimator")
        first = members[0]
        for member in members[1:]:
            if (member.method, member.dim_theta, member.x_shape) != (first.method, first.dim_theta, first.x_shape):
                raise ValueError(
                    f"members: expected one method and shape, got {first.method} {first.dim_theta} -> "
                    f"{list(first.x_shape)} and {member.method} {member.dim_theta} -> {list(member.x_shape)}"
                )
        hyperparameters = {**first.hyperparameters, "ensemble": {"members": len(members), "bootstrap": bool(bootstrap)}}
        self._members = members
        super().__init__(nn.ModuleList(member.network for member in members), hyperparameters, first.prior)
        self._normaliser_draws: Tensor | None = None
        self._normalisers: dict[bytes, list[float]] = {}  # an observation's bytes -> its K log normalisers
        self._warned = False

    @property
    def members(self) -> list[Estimator]:
        return list(self._members)

    @property
    def num_members(self) -> int:
        return len(self._members)

    @property
    def prior(self) -> Distribution | None:
        return self._prior

    @prior.setter
    def prior(self, prior: Distribution | None) -> None:
        # The members evaluate their own log-ratios (NPE divides the prior out): they share it.
        self._prior = prior
        for member in self._members:
            member.prior = prior
        self._normaliser_draws, self._normalisers = None, {}

    @classmethod
    def from_hyperparameters(
        cls, hyperparameters: dict[str, Any], prior: Distribution | None = None, **kwargs: Any
    ) -> EnsembleEstimator:
        """Rebuilds the untrained members that the hyperparameters describe.

        Arguments:
            hyperparameters: A member's hyperparameters plus ``ensemble: {members, bootstrap}``.
            prior: The prior.
            kwargs: Passed to every member (e.g. a ratio estimator's ``embedding_net``).
        """
        from sbi_core.estimators.training import estimator_class  # it imports this module

        ensemble = hyperparameters["ensemble"]
        member = {key: value for key, value in hyperparameters.items() if key != "ensemble"}
        member_class = estimator_class(member["method"])
        members = [member_class.from_hyperparameters(member, prior, **kwargs) for _ in range(int(ensemble["members"]))]
        return cls(members, bool(ensemble["bootstrap"]))

    # ------------------------------------------------------------------ the log-ratio

    def member_log_ratios(self, theta: Tensor, x: Tensor) -> Tensor:
        r"""Each member's normalised log-ratio, ``[K, N, M]`` (all pairs) or ``[K, M, C]`` (per observation).

        Their spread at a point is the ensemble's disagreement there.
        """
        theta, x = self._inputs(theta, x, theta.ndim)
        if theta.ndim == 3:
            if len(theta) != len(x):
                raise ValueError(f"theta [M, C, d] and x [M, ...]: expected the same M, got {len(theta)} and {len(x)}")
            logs = torch.stack([member._per_observation(theta, x) for member in self._members])
            return logs - self._log_normalisers(x)[:, :, None]
        logs = torch.stack([member._all_pairs(theta, x) for member in self._members])
        return logs - self._log_normalisers(x)[:, None, :]

    def _all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        return _log_mean_exp(self.member_log_ratios(theta, x))

    def _per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        return _log_mean_exp(self.member_log_ratios(theta, x))

    def _log_normalisers(self, x: Tensor) -> Tensor:
        r"""``[K, M]``: :math:`\log E_{p(\theta)}[e^{f_k(\theta, x_m)}]` for ratio members, zeros for densities."""
        if self.spec.family != "ratio":
            return torch.zeros(self.num_members, len(x), device=x.device, dtype=x.dtype)
        if x.requires_grad and torch.is_grad_enabled():  # a gradient in x (design): computed afresh
            return self._compute_log_normalisers(x)
        keys = [str(x.dtype).encode() + row.tobytes() for row in x.detach().reshape(len(x), -1).cpu().numpy()]
        missing = [i for i, key in enumerate(keys) if key not in self._normalisers]
        if missing:
            with torch.no_grad():
                computed = self._compute_log_normalisers(x[missing]).T.tolist()
            if len(self._normalisers) + len(missing) > MAX_CACHED_NORMALISERS:
                self._normalisers.clear()
            self._normalisers.update((keys[i], values) for i, values in zip(missing, computed))
        return torch.tensor([self._normalisers[key] for key in keys], dtype=x.dtype, device=x.device).T

    def _compute_log_normalisers(self, x: Tensor) -> Tensor:
        """``[K, M]``, every member's, warning once if one rests on few prior draws."""
        log_normalisers, ess = zip(*(self._normalise(member, x) for member in self._members))
        log_normalisers = torch.stack(log_normalisers)
        smallest = float(torch.stack(ess).min())
        if smallest < MIN_NORMALISER_ESS and not self._warned:
            self._warned = True  # once per estimator: a sampler normalises observation group after group
            warnings.warn(
                f"ensemble of {self.method}: a member's normaliser rests on an effective {smallest:.1f} of "
                f"{NORMALISER_DRAWS} prior draws for some observation (below {MIN_NORMALISER_ESS:g}); its "
                "weight in the mixture is uncertain. The posterior is far narrower than the prior there",
                LowNormaliserSampleSizeWarning,
                stacklevel=4,
            )
        return log_normalisers

    def _normalise(self, member: Estimator, x: Tensor) -> tuple[Tensor, Tensor]:
        """One member's log normaliser and its effective sample size per observation, ``[M]`` each."""
        draws = self._prior_draws(x.device, x.dtype)
        chunk = max(1, pairs_per_call(x.device) // len(x))
        log_sum = torch.full((len(x),), -math.inf, device=x.device, dtype=x.dtype)
        log_sum_squares = log_sum.clone()
        for part in draws.split(chunk):
            logits = member._all_pairs(part, x)
            log_sum = torch.logaddexp(log_sum, torch.logsumexp(logits, 0))
            log_sum_squares = torch.logaddexp(log_sum_squares, torch.logsumexp(2 * logits, 0))
        ess = torch.exp(2 * log_sum - log_sum_squares).detach()
        return log_sum - math.log(len(draws)), ess

    def _prior_draws(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The fixed prior draws of the normalisers (seed 0; the global generator is left as it was)."""
        if self._normaliser_draws is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self._normaliser_draws = self.require_prior().sample((NORMALISER_DRAWS,))
        return self._normaliser_draws.to(device, dtype)

    # ------------------------------------------------------------------ the posterior

    def posterior(self, sampling: dict[str, Any]) -> PosteriorEstimate:
        """The equal mixture of the members' posteriors.

        A method that samples its own posterior (NPE) samples the mixture exactly: each
        draw comes from a member picked at random, and the log-density is the log of the
        members' mean density. The others sample :math:`p(\theta) \, r(\theta, x)` with the
        ensemble's mean ratio by our batched SIR or MCMC (:meth:`Estimator.posterior`).
        """
        if "sampler" in self.spec.sampling_keys:
            return super().posterior(sampling)
        return _mixture([member.posterior(sampling) for member in self._members])


def _mixture(posteriors: Sequence[PosteriorEstimate]) -> PosteriorEstimate:
    """The equal mixture of normalised posteriors: sampled by picking a component per draw."""

    def sample(x: Tensor, num_samples: int) -> Tensor:
        draws = torch.stack([posterior.sample(x, num_samples) for posterior in posteriors])  # [K, M, S, d]
        pick = torch.randint(len(posteriors), draws.shape[1:3])
        return torch.gather(draws, 0, pick[None, :, :, None].expand(1, *draws.shape[1:]))[0]

    def log_density(theta: Tensor, x: Tensor) -> Tensor:
        return _log_mean_exp(torch.stack([posterior.log_density(theta, x) for posterior in posteriors]))

    return PosteriorEstimate(sample=sample, log_density=log_density)


def _log_mean_exp(logs: Tensor) -> Tensor:
    """``log mean_k exp(logs[k])`` over the first dimension (``-inf`` where every member is)."""
    return torch.logsumexp(logs, 0) - math.log(len(logs))
