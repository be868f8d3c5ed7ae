r"""The neural-empirical-Bayes objective: the marginal likelihood of a population under the source.

For observations :math:`x_i` and a source :math:`q_\phi`,

.. math:: \log p(x_i) = \log \mathbb{E}_{\theta \sim q_\phi}\, r(\theta, x_i) + \log p_{\text{train}}(x_i),

where :math:`r` is any trained estimator's ratio (its log-ratio up to a constant per
observation, which drops out of the gradient). The expectation is estimated with
:math:`K` reparametrised atoms :math:`\theta_k \sim q_\phi`, scored against a batch of
observations as one ``[K, B]`` pair matrix:

* ``biased``: :math:`\mathcal{L}_K = \log \frac{1}{K} \sum_k r(\theta_k, x_i)`, a lower
  bound on :math:`\log p(x_i)` whose gap shrinks as :math:`1/K` (Vandegar et al.);
* ``roulette``: the Russian-roulette (SUMO) estimator, unbiased for
  :math:`\log p(x_i)`: :math:`\mathcal{L}_K + \sum_{j=1}^{N} \Delta_j / P(N \ge j)`
  with :math:`\Delta_j = \mathcal{L}_{K+j} - \mathcal{L}_{K+j-1}` and a random
  :math:`N`, geometric with stopping probability ``roulette_probability``, drawn once
  per step (Luo et al.).

A detector that records an event at :math:`\theta` with probability
:math:`\epsilon(\theta)` turns the observed density into
:math:`\mathbb{E}_q[r\,\epsilon] / \mathbb{E}_q[\epsilon]`; with the task's
efficiency the denominator is estimated from the same atoms.

References:
    | Neural Empirical Bayes: Source Distribution Estimation and its Applications to
    | Simulation-Based Inference (Vandegar et al., 2021) https://arxiv.org/abs/2011.05836
    | SUMO: Unbiased Estimation of Log Marginal Probability for Latent Variable Models
    | (Luo et al., 2020) https://arxiv.org/abs/2004.00353
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from sbi_core.sampling.support import LogRatioModel
from sbi_core.unfolding.source import SourceFlow

__all__ = ["NEBLoss", "ESTIMATORS", "log_mean_ratio", "roulette_log_mean_ratio"]

ESTIMATORS: tuple[str, ...] = ("biased", "roulette")


def log_mean_ratio(log_ratio: Tensor) -> Tensor:
    r"""The biased estimator :math:`\mathcal{L}_K = \log \frac{1}{K}\sum_k e^{f_{k}}`.

    Arguments:
        log_ratio: ``[K, B]``, atoms by observations.

    Returns:
        ``[B]``.

    Example:
        >>> log_mean_ratio(torch.zeros(4, 3))
        tensor([0., 0., 0.])
    """
    return torch.logsumexp(log_ratio, dim=0) - math.log(len(log_ratio))


def roulette_log_mean_ratio(log_ratio: Tensor, num_atoms: int, probability: float) -> Tensor:
    r"""The Russian-roulette (SUMO) estimator from the first ``num_atoms + N`` atoms.

    Arguments:
        log_ratio: ``[num_atoms + N, B]``; the rows past ``num_atoms`` are the roulette's.
        num_atoms: ``K``, the atoms every estimate uses.
        probability: The geometric stopping probability that drew ``N``.

    Returns:
        ``[B]``, unbiased for :math:`\log \mathbb{E}\, e^{f}` (up to the truncation of ``N``).

    Example:
        >>> roulette_log_mean_ratio(torch.zeros(6, 2), 4, 0.5)
        tensor([0., 0.])
    """
    counts = torch.arange(1, len(log_ratio) + 1, dtype=log_ratio.dtype, device=log_ratio.device)
    running = torch.logcumsumexp(log_ratio, dim=0) - counts.log()[:, None]  # L_1 .. L_{K+N}
    extra = len(log_ratio) - num_atoms
    if extra == 0:
        return running[num_atoms - 1]
    steps = torch.arange(extra, dtype=log_ratio.dtype, device=log_ratio.device)
    survival = (1 - probability) ** steps  # P(N >= j), j = 1 .. N
    increments = running[num_atoms:] - running[num_atoms - 1 : -1]
    return running[num_atoms - 1] + (increments / survival[:, None]).sum(0)


class NEBLoss(nn.Module):
    r"""The negative mean log marginal likelihood of a batch of observations under the source.

    Arguments:
        model: A trained estimator, or any :class:`~sbi_core.sampling.LogRatioModel`
            (an exact likelihood, :class:`~sbi_core.unfolding.LikelihoodModel`).
        num_atoms: ``K``, source samples per step, shared by the batch.
        estimator: ``biased`` or ``roulette`` (:data:`ESTIMATORS`).
        roulette_probability: The roulette's geometric stopping probability; on
            average ``1 / p`` atoms are added.
        efficiency: The detection probability :math:`\epsilon(\theta)` ``[N, d] -> [N]``,
            or ``None`` when every event is recorded.
        max_roulette_atoms: Truncates ``N`` (memory bound); the bias it leaves is below
            :math:`(1 - p)^{\text{max}}`.

    Example:
        >>> from sbi.utils import BoxUniform
        >>> from sbi_core.ratio import RatioEstimator
        >>> prior = BoxUniform(-torch.ones(2), torch.ones(2))
        >>> loss = NEBLoss(RatioEstimator(2, [2]), num_atoms=16)
        >>> loss(SourceFlow.for_prior(prior, transforms=1, hidden_features=[8]), torch.zeros(5, 2)).shape
        torch.Size([])
    """

    def __init__(
        self,
        model: LogRatioModel,
        num_atoms: int,
        estimator: str = "biased",
        roulette_probability: float = 0.25,
        efficiency: Callable[[Tensor], Tensor] | None = None,
        max_roulette_atoms: int = 400,
    ):
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator: expected one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        if num_atoms < 1:
            raise ValueError(f"num_atoms: expected a positive integer, got {num_atoms}")
        if not 0 < roulette_probability < 1:
            raise ValueError(f"roulette_probability: expected a number in (0, 1), got {roulette_probability}")
        self.model = model
        self.num_atoms = int(num_atoms)
        self.estimator = estimator
        self.roulette_probability = float(roulette_probability)
        self.efficiency = efficiency
        self.max_roulette_atoms = int(max_roulette_atoms)

    def forward(self, source: SourceFlow, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Returns the loss for a batch ``x [B, *x_shape]`` (one draw of atoms, and of the roulette's ``N``)."""
        extra = 0
        if self.estimator == "roulette":
            uniform = torch.rand((), generator=generator).item()
            extra = min(int(math.log1p(-uniform) // math.log1p(-self.roulette_probability)) + 1, self.max_roulette_atoms)
        theta = source().rsample((self.num_atoms + extra,))
        log_ratio = self.model.all_pairs(theta, x)  # [K + N, B]
        log_efficiency = None
        if self.efficiency is not None:
            log_efficiency = self.efficiency(theta).clamp_min(1e-30).log().to(log_ratio.device)
            log_ratio = log_ratio + log_efficiency[:, None]
        loss = -self._log_mean(log_ratio).mean()
        if log_efficiency is not None:
            loss = loss + self._log_mean(log_efficiency[:, None])[0]
        return loss

    def _log_mean(self, log_ratio: Tensor) -> Tensor:
        if self.estimator == "roulette":
            return roulette_log_mean_ratio(log_ratio, self.num_atoms, self.roulette_probability)
        return log_mean_ratio(log_ratio)
