"""The NPE and NLE flows rebuilt from their JSON hyperparameters with zuko alone, without sbi.

sbi 0.27 trains the flows (:mod:`sbi_core.estimators.flows`); every job that only loads
one (sampling, diagnostics, limits) rebuilds it here. Importing sbi's network factory
pulls in sbi.utils, scipy.stats, scikit-learn and matplotlib: 2.4 s of a job whose own
work is a fraction of a second. :class:`ConditionalFlow` has the layout of sbi's
``ZukoFlow`` built by ``posterior_nn`` / ``likelihood_nn`` with their default
(independent) z-scoring: the same zuko flow behind a z-scoring affine transform, and a
z-scoring embedding of the condition, so sbi's trained state dict loads into it key for
key. ``tests/test_conditional_flow.py`` checks both, for every flow the schema offers,
against sbi's own builder.

The log-density of a masked autoregressive flow with affine steps (NLE's default) skips
zuko's lazy plumbing (:func:`_affine_autoregressive_log_prob`): NLE's MCMC calls it about
900 times for one observation, and per call that plumbing (nested transform objects,
``torch.broadcast_shapes``, whose first call imports sympy) cost more than the networks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import zuko
from torch import Tensor, nn
from torch.nn import functional as F
from torch.distributions import AffineTransform
from torch.distributions.utils import _sum_rightmost
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.nn import MaskedLinear
from zuko.transforms import MonotonicAffineTransform
from zuko.utils import unpack

__all__ = ["ConditionalFlow", "Standardize", "build_conditional_flow", "FLOW_OPTIONS"]

# zuko's flow class and the keyword arguments sbi 0.27's `build_zuko_<flow>` passes it by default,
# given the hyperparameters (only NSF and NCSF read `num_bins`).
FLOW_OPTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "zuko_nice": ("NICE", lambda h: {"randmask": False}),
    "zuko_maf": ("MAF", lambda h: {"randperm": False}),
    "zuko_nsf": ("NSF", lambda h: {"bins": h["num_bins"]}),
    "zuko_ncsf": ("NCSF", lambda h: {"bins": h["num_bins"]}),
    "zuko_sospf": ("SOSPF", lambda h: {"degree": 4, "polynomials": 3}),
    "zuko_naf": ("NAF", lambda h: {"randperm": False, "signal": 16}),
    "zuko_unaf": ("UNAF", lambda h: {"randperm": False, "signal": 16}),
    "zuko_gf": ("GF", lambda h: {"components": 8}),
    "zuko_bpf": ("BPF", lambda h: {"degree": 16}),
}


class Standardize(nn.Module):
    """``(t - mean) / std`` with both as buffers (sbi's ``Standardize``: the same state-dict keys)."""

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        self.register_buffer("_mean", mean)
        self.register_buffer("_std", std)

    def forward(self, tensor: Tensor) -> Tensor:
        return (tensor - self._mean) / self._std


class ConditionalFlow(nn.Module):
    """A zuko flow of a vector ``input`` given a vector ``condition``, z-scored on both sides.

    Arguments:
        net: The zuko flow, its first transform the input's z-scoring.
        embedding_net: Maps the condition to the flow's context (its z-scoring).
    """

    def __init__(self, net: zuko.flows.Flow, embedding_net: nn.Module):
        super().__init__()
        self.net = net
        self._embedding_net = embedding_net
        self._affine_autoregressive = _is_affine_autoregressive(net)

    def log_prob(self, input: Tensor, condition: Tensor) -> Tensor:
        """``log q(input | condition)``: input ``[S, B, d]`` (or ``[B, d]``), condition ``[B, c]`` -> ``[S, B]``.

        The condition is expanded to the input's shape before the flow sees it, as sbi does, so
        that a loaded network gives sbi's numbers to the last bit.
        """
        if input.dim() == 2:
            input = input.unsqueeze(0)
        condition = condition.expand(*input.shape[:-1], condition.shape[-1])
        context = self._embedding_net(condition.reshape(-1, condition.shape[-1])).reshape(*input.shape[:-1], -1)
        if self._affine_autoregressive:
            return _affine_autoregressive_log_prob(self.net, input, context)
        return self.net(context).log_prob(input)

    def sample(self, sample_shape: Sequence[int], condition: Tensor) -> Tensor:
        """Draws ``[*sample_shape, B, d]`` for conditions ``[B, c]``."""
        return self.net(self._embedding_net(condition)).sample(torch.Size(sample_shape))

    def rsample(self, sample_shape: Sequence[int], condition: Tensor) -> Tensor:
        """Reparametrised draws ``[*sample_shape, B, d]``: differentiable in the condition (a design
        surrogate's gradient) and in the weights."""
        return self.net(self._embedding_net(condition)).rsample(torch.Size(sample_shape))


def build_conditional_flow(hyperparameters: dict[str, Any]) -> ConditionalFlow:
    """Builds an untrained NPE or NLE flow on the CPU: the architecture of the hyperparameters.

    The z-scoring statistics are placeholders (zero mean, unit scale), buffers that a
    loaded state dict overwrites. NPE models theta given the flattened x, NLE the
    flattened x given theta.

    Arguments:
        hyperparameters: ``method`` (``npe`` or ``nle``), ``flow`` (a key of
            :data:`FLOW_OPTIONS`), ``hidden_features``, ``num_transforms``, ``num_bins``,
            ``dim_theta`` and ``x_shape``.

    Example:
        >>> flow = build_conditional_flow({"method": "nle", "flow": "zuko_maf", "hidden_features": 8,
        ...                                "num_transforms": 1, "num_bins": 8, "dim_theta": 2, "x_shape": [3]})
        >>> flow.log_prob(torch.zeros(1, 4, 3), condition=torch.zeros(4, 2)).shape
        torch.Size([1, 4])
    """
    if hyperparameters["flow"] not in FLOW_OPTIONS:
        raise ValueError(f"flow: expected one of {', '.join(FLOW_OPTIONS)}, got {hyperparameters['flow']!r}")
    dim_theta, dim_x = hyperparameters["dim_theta"], math.prod(hyperparameters["x_shape"])
    features, context = {"npe": (dim_theta, dim_x), "nle": (dim_x, dim_theta)}[hyperparameters["method"]]
    name, options = FLOW_OPTIONS[hyperparameters["flow"]]
    num_transforms = hyperparameters["num_transforms"]
    flow = getattr(zuko.flows, name)(
        features=features,
        context=context,
        hidden_features=[hyperparameters["hidden_features"]] * num_transforms,
        transforms=num_transforms,
        **options(hyperparameters),
    )
    z_score = zuko.flows.UnconditionalTransform(
        AffineTransform, loc=torch.zeros(features), scale=torch.ones(features), buffer=True
    )
    net = zuko.flows.Flow((z_score, *flow.transform.transforms), flow.base)
    return ConditionalFlow(net, nn.Sequential(Standardize(torch.zeros(context), torch.ones(context)), nn.Identity()))


def _is_affine_autoregressive(net: zuko.flows.Flow) -> bool:
    """Whether `net` is the z-scoring affine transform, then masked autoregressive transforms with
    affine steps and masked-MLP hyper-networks (MAF on two or more features), then a fixed base."""
    z_score, *steps = net.transform.transforms
    return (
        isinstance(z_score, zuko.flows.UnconditionalTransform) and z_score.f is AffineTransform
        and isinstance(net.base, zuko.flows.UnconditionalDistribution)
        and all(
            type(step) is MaskedAutoregressiveTransform and step.univariate is MonotonicAffineTransform
            and step.shapes == ((), ()) and all(isinstance(layer, (MaskedLinear, nn.ReLU)) for layer in step.hyper)
            for step in steps
        )
    )


def _affine_autoregressive_log_prob(net: zuko.flows.Flow, input: Tensor, context: Tensor) -> Tensor:
    """``net(context).log_prob(input)`` for a flow :func:`_is_affine_autoregressive` accepts,
    bit for bit: the same modules and operations in the same order, without the lazy transform
    objects and broadcasting that zuko wraps around them (`input` and `context` share their batch
    shape already)."""
    z_score, *steps = net.transform.transforms
    affine = z_score(context)
    z = affine(input)
    log_det = 0 + _sum_rightmost(affine.log_abs_det_jacobian(input, z), 1)
    for step in steps:  # zuko's MaskedAutoregressiveTransform.meta, in the forward (density) direction
        hidden = torch.cat((z, context), dim=-1)
        for layer in step.hyper:  # zuko's MaskedLinear and ReLU, without nn.Module's call overhead
            if isinstance(layer, MaskedLinear):
                hidden = F.linear(hidden, layer.mask * layer.weight, layer.bias)
            else:
                hidden = F.relu(hidden)
        parameters = unpack(hidden.unflatten(-1, (-1, step.total)), step.shapes)
        z, ladj = MonotonicAffineTransform(*parameters).call_and_ladj(z)
        log_det = log_det + _sum_rightmost(ladj, 1)
    return net.base(context).expand(context.shape[:-1]).log_prob(z) + log_det
