r"""Expected information gain of many designs at once, with standard errors.

.. math:: \mathrm{EIG}(\xi) = \mathbb{E}_{p(\theta) p(x | \theta, \xi)}
          \left[\log p(x | \theta, \xi) - \log p(x | \xi)\right]

Two families of bounds, each vectorized over a batch of designs ``[D, T, p]`` (no Python
loop over designs or samples; chunks only bound memory):

* **contrastive**: with any score :math:`f(\theta, x)` equal to the log-likelihood up to a
  function of ``x`` alone (the exact likelihood, NLE's flow, any ratio estimator's logit),
  :math:`\mathbb{E}[f(\theta_0, x) - \log \tfrac{1}{L+1} \sum_{l=0}^{L} e^{f(\theta_l, x)}]`
  with :math:`\theta_{1..L}` fresh prior draws is a lower bound (sPCE / InfoNCE, at most
  :math:`\log(L+1)`); leaving :math:`\theta_0` out of the sum gives sNMC, an upper bound for the
  exact likelihood;
* **Barber-Agakov**: :math:`\mathbb{E}[\log q(\theta | x, \xi) - \log p(\theta)]` from a
  posterior estimate (NPE), a lower bound;
* **NLE with a marginal flow** (Klein et al. 2026):
  :math:`\mathbb{E}[\log q(x | \theta, \xi) - \log q(x | \xi)]`, two learned densities, an estimate.

Amortised estimators see the design as part of the observation,
:func:`design_observation`: one trained network scores every design without retraining.

References:
    | A Unified Stochastic Gradient Approach to Designing Bayesian-Optimal Experiments
    | (Foster et al., 2020) https://arxiv.org/abs/1911.00294
    | Representation Learning with Contrastive Predictive Coding (van den Oord et al., 2018)
    | https://arxiv.org/abs/1807.03748
    | The IM Algorithm: A Variational Approach to Information Maximization (Barber & Agakov, 2003)
    | Supercharging Simulation-Based Inference for Bayesian Optimal Experimental Design
    | (Klein et al., 2026) https://arxiv.org/abs/2602.06900
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sbi_core.design.tasks import DesignTask

__all__ = ["EIGEstimate", "design_observation", "design_input", "likelihood_eig", "estimator_eig", "ESTIMATOR_BOUNDS"]

# A chunk of outer samples holds at most this many scores (designs x outer x contrastive).
_CHUNK_ELEMENTS = 2**22


@dataclass(frozen=True)
class EIGEstimate:
    """EIG per design (nats) with its Monte Carlo standard error, and how it was estimated."""

    eig: Tensor
    stderr: Tensor
    method: str
    num_outer: int
    num_inner: int

    @classmethod
    def from_terms(cls, terms: Tensor, method: str, num_inner: int) -> EIGEstimate:
        """Mean and standard error over the outer samples of per-sample terms ``[D, N]``."""
        num_outer = terms.shape[1]
        stderr = terms.detach().std(dim=1) / math.sqrt(num_outer)
        return cls(terms.mean(dim=1), stderr, method, num_outer, num_inner)


def design_observation(x: Tensor, design: Tensor) -> Tensor:
    """What an amortised estimator sees: the outcome and its design side by side,
    ``x [..., T]`` and ``design [..., T, p]`` -> ``[..., T + T p]``."""
    return torch.cat([x, design.flatten(-2)], dim=-1)


def design_input(estimator) -> str:
    """Where a design estimator takes the design: ``x`` (beside the outcome) or ``theta`` (NLE's
    ``q(x | theta, xi)``), as :func:`~sbi_core.design.training.train_design_estimator` recorded it."""
    return estimator.hyperparameters.get("design_input", "x")


def _joint_draws(task: DesignTask, designs: Tensor, num_outer: int) -> tuple[Tensor, Tensor, Tensor]:
    """``theta [D, N, d]``, ``x [D, N, T]`` and the designs broadcast to ``[D, N, T, p]``, on the
    designs' device (the simulator runs there, so ``x`` carries the designs' gradient).

    Every design sees the same ``N`` parameters (common random numbers): each design's estimate
    is as before, and differences between designs lose the parameters' share of the noise.
    """
    num_designs = designs.shape[0]
    theta = task.prior.sample((num_outer,)).to(designs.device).expand(num_designs, -1, -1)
    expanded = designs[:, None].expand(-1, num_outer, -1, -1)
    x = task.simulate(theta.flatten(0, 1), expanded.flatten(0, 1)).unflatten(0, (num_designs, num_outer))
    return theta, x, expanded


def _contrastive_terms(joint: Tensor, contrastive: Tensor, upper: bool) -> Tensor:
    """Per-sample terms from scores of the joint pair ``[D, N]`` and of ``L`` contrastive
    parameters ``[D, N, L]``: sPCE/InfoNCE (lower) or sNMC (upper, ``theta_0`` left out)."""
    if upper:
        return joint - (torch.logsumexp(contrastive, dim=-1) - math.log(contrastive.shape[-1]))
    stacked = torch.cat([joint[..., None], contrastive], dim=-1)
    return joint - (torch.logsumexp(stacked, dim=-1) - math.log(stacked.shape[-1]))


def likelihood_eig(
    task: DesignTask, designs: Tensor, num_outer: int = 1000, num_inner: int = 1000, upper: bool = False
) -> EIGEstimate:
    r"""sPCE (lower bound) or sNMC (``upper=True``) from the task's exact likelihood.

    The ``num_inner`` contrastive prior draws are shared by every outer sample and design (each
    term is still a bound; the standard error treats the terms as independent, which holds as
    ``L`` grows). Differentiable in the designs when the simulator is; the caller seeds torch.

    Arguments:
        task: A task with a ``log_likelihood``.
        designs: ``[D, T, p]``.
        num_outer: Outer samples ``N`` per design (the standard error's count).
        num_inner: Contrastive samples ``L`` per outer sample.

    Returns:
        :class:`EIGEstimate` with ``eig`` and ``stderr`` ``[D]``.

    Example:
        >>> from sbi_core.design.tasks import design_task
        >>> task = design_task("linear_gaussian")
        >>> _ = torch.manual_seed(0)
        >>> estimate = likelihood_eig(task, torch.tensor([[[1.0]]]), num_outer=2000, num_inner=500)
        >>> abs(estimate.eig.item() - task.exact_eig(torch.tensor([[[1.0]]])).item()) < 0.05
        True
    """
    if task.log_likelihood is None:
        raise ValueError(f"design task {task.name!r} has no likelihood: use a trained estimator (estimator_eig)")
    theta, x, expanded = _joint_draws(task, designs, num_outer)
    joint = task.log_likelihood(theta, x, expanded)
    # One set of contrastive draws for every outer sample and design (as pyro's nmc_eig): the
    # likelihood's mean is computed once per (design, draw), its density per (outer sample, draw).
    inner = task.prior.sample((num_inner,)).to(designs.device)[None, None]  # [1, 1, L, d]
    per_design = designs[:, None, None]  # [D, 1, 1, T, p]
    chunk = max(1, _CHUNK_ELEMENTS // max(1, designs.shape[0] * num_inner))
    terms = torch.cat([  # memory only: each chunk of outer samples is one batched evaluation
        _contrastive_terms(joint[:, part], task.log_likelihood(inner, x[:, part, None], per_design), upper)
        for part in (slice(s, s + chunk) for s in range(0, num_outer, chunk))
    ], dim=1)
    return EIGEstimate.from_terms(terms, "snmc" if upper else "spce", num_inner)


def _contrastive_estimator_terms(estimator, theta: Tensor, x: Tensor, designs: Tensor, group: int) -> Tensor:
    """InfoNCE terms: the outer samples fall into groups of `group`; within a group, the other
    samples' parameters are each observation's contrastive set (``L = group - 1``), all pairs
    of a group scored in one call. Cost ``N * group`` per design, not ``N^2``. An estimator that
    takes the design with the parameters (NLE's ``q(x | theta, xi)``) pairs each contrastive
    ``theta_j`` with the observation's own design."""
    num_designs, num_outer, dim = theta.shape
    shape = (num_designs, num_outer // group, group)
    contrast = theta.reshape(*shape, dim)[:, :, None].expand(-1, -1, group, -1, -1)  # [D, N/G, i, j, d]
    if design_input(estimator) == "theta":
        own = designs.flatten(-2).reshape(*shape, -1)[:, :, :, None].expand(-1, -1, -1, group, -1)
        scores = estimator.per_observation(torch.cat([contrast, own], dim=-1).reshape(-1, group, own.shape[-1] + dim),
                                           x.flatten(0, 1))
    else:
        scores = estimator.per_observation(contrast.reshape(-1, group, dim), design_observation(x, designs).flatten(0, 1))
    scores = scores.reshape(*shape, group)  # [D, N / G, i, j]: f(theta_j, x_i)
    joint = torch.diagonal(scores, dim1=2, dim2=3)
    return (joint - (torch.logsumexp(scores, dim=-1) - math.log(group))).flatten(1)


def _barber_agakov_terms(estimator, theta: Tensor, x: Tensor, designs: Tensor, group: int) -> Tensor:
    """Barber-Agakov terms: NPE's log-ratio is ``log q(theta | x) - log p(theta)``."""
    observed = design_observation(x, designs).flatten(0, 1)
    return estimator.per_observation(theta.flatten(0, 1)[:, None], observed)[:, 0].unflatten(0, theta.shape[:2])


def _marginal_terms(estimator, theta: Tensor, x: Tensor, designs: Tensor, marginal) -> Tensor:
    """Klein et al.'s NLE terms: ``log q(x | theta, xi) - log q(x | xi)``, the conditional flow against
    the marginal flow at each joint draw (an estimate, not a bound)."""
    flat = designs.flatten(-2).flatten(0, 1)  # [D N, T p]
    outcomes = x.flatten(0, 1)
    conditional = estimator.per_observation(torch.cat([theta.flatten(0, 1), flat], dim=-1)[:, None], outcomes)
    return (conditional - marginal.per_observation(flat[:, None], outcomes))[:, 0].unflatten(0, theta.shape[:2])


ESTIMATOR_BOUNDS = {"contrastive": _contrastive_estimator_terms, "barber_agakov": _barber_agakov_terms,
                    "marginal": _marginal_terms}


def estimator_eig(
    estimator, task: DesignTask, designs: Tensor, num_outer: int = 4096, num_contrastive: int = 256,
    bound: str | None = None, marginal=None,
) -> EIGEstimate:
    r"""The EIG of many designs from one amortised estimator (trained on :func:`design_observation`).

    Arguments:
        estimator: A trained :class:`~sbi_core.estimators.Estimator` whose observation is
            ``design_observation(x, design)`` (NLE: conditioned on ``[theta, design]``).
        task: The task (its prior and simulator draw the joint samples).
        designs: ``[D, T, p]``.
        num_outer: Joint draws per design (a multiple of `num_contrastive`).
        num_contrastive: The contrastive bound's group size ``G``: each observation is scored
            against the ``G`` parameters of its group, so the bound is at most ``log G``.
        bound: ``contrastive`` (InfoNCE; NRE, NLE and any log-ratio), ``barber_agakov`` (NPE) or
            ``marginal`` (NLE with `marginal`, Klein et al.). Default: Barber-Agakov for NPE,
            marginal for NLE given a marginal flow, contrastive otherwise.
        marginal: NLE's marginal flow :math:`q(x | \xi)`
            (:func:`~sbi_core.design.training.train_marginal_likelihood`).

    Returns:
        :class:`EIGEstimate`, on the estimator's device; differentiable in the designs.
    """
    bound = bound or ("barber_agakov" if estimator.method == "npe" else "marginal" if marginal else "contrastive")
    if bound not in ESTIMATOR_BOUNDS:
        raise ValueError(f"unknown EIG bound {bound!r}; expected one of {', '.join(ESTIMATOR_BOUNDS)}")
    if bound == "barber_agakov" and estimator.method != "npe":
        raise ValueError(f"the Barber-Agakov bound needs a posterior estimate (npe), not {estimator.method}")
    if bound == "marginal" and (marginal is None or design_input(estimator) != "theta"):
        raise ValueError("the marginal estimate needs NLE's q(x | theta, xi) and its marginal flow q(x | xi)")
    if bound == "contrastive" and (num_contrastive < 2 or num_outer % num_contrastive):
        raise ValueError(f"num_outer ({num_outer}) must be a multiple of num_contrastive ({num_contrastive}) >= 2")
    theta, x, expanded = _joint_draws(task, designs.to(estimator.device), num_outer)
    chunk = max(1, _CHUNK_ELEMENTS // (num_outer * num_contrastive)) if bound == "contrastive" else len(designs)
    extra = marginal if bound == "marginal" else num_contrastive
    terms = torch.cat([ESTIMATOR_BOUNDS[bound](estimator, theta[part], x[part], expanded[part], extra)
                       for part in (slice(s, s + chunk) for s in range(0, designs.shape[0], chunk))])
    label = {"contrastive": "infonce", "barber_agakov": "ba", "marginal": "marginal"}[bound]
    return EIGEstimate.from_terms(terms, f"{estimator.method}_{label}", num_contrastive - 1 if bound == "contrastive" else 0)
