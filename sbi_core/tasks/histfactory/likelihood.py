r"""The exact HistFactory log-likelihood :math:`\log p(x | \theta)`, for all pairs of parameters and data at once.

Every term of a HistFactory likelihood (Poisson main data, Poisson or normal
constraint terms) is an exponential family in ``x``, so

.. math:: \log p(x | \theta) = x \cdot a(\theta) + b(\theta) + c(x)

with, per datum, :math:`a = \log \lambda`, :math:`b = -\lambda`,
:math:`c = -\log \Gamma(x + 1)` for a Poisson rate :math:`\lambda`, and
:math:`a = \mu / \sigma^2`, :math:`b = -\mu^2 / 2\sigma^2`,
:math:`c = -x^2 / 2\sigma^2 - \log \sigma - \log(2\pi) / 2` for a normal mean
:math:`\mu`. The ``[N, M]`` matrix of all pairs is one matrix product, and the
Poisson pmf is pyhf's continuous one (with :math:`\Gamma`), so the values equal
``model.logpdf``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sbi_core.tasks.histfactory.model import HistFactoryModel

__all__ = ["HistFactoryLikelihood"]


class HistFactoryLikelihood(nn.Module):
    r"""The exact log-likelihood of a :class:`HistFactoryModel`, as a :class:`~sbi_core.sampling.LogRatioModel`.

    ``f(theta, x) = log p(x | theta)``: the main data's Poisson terms, plus the
    constraint terms when ``x`` includes the auxiliary data. It is ``-inf`` where a
    Poisson rate is negative or not finite, or zero under a positive count.
    Sampled as a ratio model (:class:`~sbi_core.sampling.RatioPosterior`) it gives
    the exact posterior. Values are computed in float64 and returned as float32.

    Arguments:
        model: The batched pyhf model.

    Example:
        >>> likelihood = HistFactoryLikelihood(model)
        >>> theta = torch.ones(5, likelihood.dim_theta)
        >>> likelihood.all_pairs(theta, model.simulate(theta[:3])).shape
        torch.Size([5, 3])
    """

    def __init__(self, model: HistFactoryModel):
        super().__init__()
        self.model = model
        self.dim_theta = len(model.parameters)
        self.x_shape = (model.num_x,)
        # The samplers read the device of the first parameter; this module has no weights.
        self.device_anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def all_pairs(self, theta: Tensor, x: Tensor) -> Tensor:
        """Returns ``[i, j] = log p(x_j | theta_i)`` for theta ``[N, d]`` and x ``[M, n_x]``: ``[N, M]``."""
        a, b, zero_rate = self._theta_terms(theta)
        x = self._check_x(x)
        log_likelihood = x @ a.T + b[None, :] + self._x_terms(x)[:, None]
        impossible = ((x > 0).double() @ zero_rate.double().T) > 0
        return log_likelihood.masked_fill(impossible, -torch.inf).T.to(torch.float32).to(theta.device)

    def per_observation(self, theta: Tensor, x: Tensor) -> Tensor:
        """Returns ``[m, c] = log p(x_m | theta_mc)`` for theta ``[M, C, d]`` and x ``[M, n_x]``: ``[M, C]``."""
        a, b, zero_rate = self._theta_terms(theta)
        x = self._check_x(x)
        log_likelihood = torch.einsum("mcn,mn->mc", a, x) + b + self._x_terms(x)[:, None]
        impossible = torch.einsum("mcn,mn->mc", zero_rate.double(), (x > 0).double()) > 0
        return log_likelihood.masked_fill(impossible, -torch.inf).to(torch.float32).to(theta.device)

    def _check_x(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.x_shape:
            raise ValueError(f"x: expected shape [M, {self.x_shape[0]}], got {list(x.shape)}")
        return x.detach().cpu().to(torch.float64)

    def _theta_terms(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The coefficients ``a [..., n_x]`` and ``b [...]``, and where a rate is zero ``[..., n_x]``."""
        model = self.model
        pars = model.pyhf_parameters(theta)
        rates = [model.expected_main(pars)]
        if model.include_auxdata:
            normal_mean, poisson_rate = model.expected_aux(pars)
            rates.append(poisson_rate)
        rate = torch.cat(rates, dim=-1)
        invalid = ~(rate.isfinite() & (rate >= 0)).all(-1)
        zero_rate = rate == 0
        log_rate = torch.log(rate.clamp_min(0)).masked_fill(zero_rate, 0.0)
        b = -rate.sum(-1)
        if not model.include_auxdata:
            a = log_rate
        else:
            num_main = model.num_main
            a = torch.empty(*pars.shape[:-1], model.num_x, dtype=torch.float64)
            a[..., :num_main] = log_rate[..., :num_main]
            a[..., num_main + model.poisson_slots] = log_rate[..., num_main:]
            variance = model.normal_sigma**2
            a[..., num_main + model.normal_slots] = normal_mean / variance
            b = b - (normal_mean**2 / (2 * variance)).sum(-1)
            aligned = torch.zeros_like(a, dtype=torch.bool)
            aligned[..., :num_main] = zero_rate[..., :num_main]
            aligned[..., num_main + model.poisson_slots] = zero_rate[..., num_main:]
            zero_rate = aligned
        a = a.masked_fill(invalid[..., None], 0.0)
        b = b.masked_fill(invalid, -torch.inf)
        return a, b, zero_rate

    def _x_terms(self, x: Tensor) -> Tensor:
        """The terms ``c(x)`` of the data alone, ``[M]``."""
        model = self.model
        poisson = x[:, : model.num_main]
        c = -torch.lgamma(poisson + 1).sum(-1)
        if model.include_auxdata:
            aux = x[:, model.num_main :]
            c = c - torch.lgamma(aux[:, model.poisson_slots] + 1).sum(-1)
            sigma = model.normal_sigma
            normal = aux[:, model.normal_slots]
            c = c - (normal**2 / (2 * sigma**2)).sum(-1)
            c = c - torch.log(sigma).sum() - len(sigma) * math.log(2 * math.pi) / 2
        return c
