"""Priors from the ``prior`` mapping of an analysis config (box uniform, Gaussian, custom)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal

from sbi_core.errors import ConfigError
from sbi_core.tasks.box import BoxUniform
from sbi_core.tasks.user_code import import_callable

__all__ = ["prior_from_config", "PRIOR_TYPES"]

# Allowed keys per prior type (besides 'type').
PRIOR_TYPES: dict[str, tuple[str, ...]] = {
    "box_uniform": ("low", "high"),
    "gaussian": ("mean", "std", "cov"),
    "custom": ("path",),
}


def prior_from_config(spec: dict[str, Any], where: str) -> Distribution:
    """Builds a float32 prior with event shape ``(d,)`` from its config.

    Supported specs:

    - ``{type: box_uniform, low: [..], high: [..]}``
    - ``{type: gaussian, mean: [..], std: [..]}`` (independent) or
      ``{type: gaussian, mean: [..], cov: [[..], ..]}`` (full covariance)
    - ``{type: custom, path: "package.module:function"}``, where ``function()``
      returns a torch ``Distribution``.

    Arguments:
        spec: The ``prior`` mapping.
        where: Its dotted config key, e.g. ``"analyses.demo.prior"``, for error messages.

    Returns:
        The prior.

    Raises:
        ConfigError: Naming the offending key, if the spec is invalid.

    Example:
        >>> prior = prior_from_config({"type": "box_uniform", "low": [0, 0], "high": [1, 2]}, "p")
        >>> prior.event_shape
        torch.Size([2])
    """
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where}: expected a mapping with a 'type' key, got {spec!r}"
        )
    if "type" not in spec:
        raise ConfigError(f"{where}.type: required; one of {', '.join(PRIOR_TYPES)}")
    kind = spec["type"]
    if kind not in PRIOR_TYPES:
        raise ConfigError(
            f"{where}.type: unknown prior type {kind!r}; expected one of {', '.join(PRIOR_TYPES)}"
        )
    for key in spec:
        if key != "type" and key not in PRIOR_TYPES[kind]:
            raise ConfigError(
                f"{where}.{key}: unknown key for a {kind} prior; "
                f"allowed: type, {', '.join(PRIOR_TYPES[kind])}"
            )
    if kind == "box_uniform":
        return _box_uniform(spec, where)
    if kind == "gaussian":
        return _gaussian(spec, where)
    return _custom(spec, where)


def _vector(value: Any, where: str) -> Tensor:
    """Checks a non-empty list of finite numbers and returns it as float32."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(
            f"{where}: expected a non-empty list of numbers, got {value!r}"
        )
    for i, v in enumerate(value):
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
        ):
            raise ConfigError(f"{where}[{i}]: expected a finite number, got {v!r}")
    return torch.tensor([float(v) for v in value], dtype=torch.float32)


def _box_uniform(spec: dict[str, Any], where: str) -> Distribution:
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: a box_uniform prior needs 'low' and 'high' bounds")
    low = _vector(spec["low"], f"{where}.low")
    high = _vector(spec["high"], f"{where}.high")
    if len(high) != len(low):
        raise ConfigError(
            f"{where}.high: expected {len(low)} values (as many as {where}.low), got {len(high)}"
        )
    bad = (high <= low).nonzero().flatten()
    if len(bad):
        i = int(bad[0])
        raise ConfigError(
            f"{where}.high: each upper bound must exceed its lower bound in {where}.low; "
            f"high[{i}] = {high[i].item():g} <= low[{i}] = {low[i].item():g}"
        )
    return BoxUniform(low, high)


def _gaussian(spec: dict[str, Any], where: str) -> Distribution:
    if "mean" not in spec:
        raise ConfigError(f"{where}.mean: required for a gaussian prior")
    if ("std" in spec) == ("cov" in spec):
        raise ConfigError(
            f"{where}: a gaussian prior needs exactly one of 'std' (independent) or 'cov' "
            "(full covariance)"
        )
    mean = _vector(spec["mean"], f"{where}.mean")
    d = len(mean)
    if "std" in spec:
        std = _vector(spec["std"], f"{where}.std")
        if len(std) != d:
            raise ConfigError(
                f"{where}.std: expected {d} values (as many as {where}.mean), got {len(std)}"
            )
        if (std <= 0).any():
            i = int((std <= 0).nonzero()[0])
            raise ConfigError(f"{where}.std[{i}]: must be > 0, got {std[i].item():g}")
        return MultivariateNormal(mean, scale_tril=torch.diag(std))
    rows = spec["cov"]
    if not isinstance(rows, (list, tuple)) or len(rows) != d:
        raise ConfigError(
            f"{where}.cov: expected a {d}x{d} matrix (list of {d} rows), got {rows!r}"
        )
    cov_rows = [_vector(row, f"{where}.cov[{i}]") for i, row in enumerate(rows)]
    if any(len(row) != d for row in cov_rows):
        raise ConfigError(
            f"{where}.cov: expected a {d}x{d} matrix, got rows of lengths "
            f"{[len(row) for row in cov_rows]}"
        )
    cov = torch.stack(cov_rows)
    if not torch.allclose(cov, cov.T, rtol=1e-6, atol=1e-12):
        raise ConfigError(f"{where}.cov: must be symmetric, got {rows!r}")
    cov = (cov + cov.T) / 2
    _, info = torch.linalg.cholesky_ex(cov)
    if info != 0:
        raise ConfigError(
            f"{where}.cov: must be positive definite (its Cholesky factorization failed "
            f"at row {int(info) - 1}), got {rows!r}"
        )
    return MultivariateNormal(mean, cov)


def _custom(spec: dict[str, Any], where: str) -> Distribution:
    if "path" not in spec:
        raise ConfigError(
            f"{where}.path: required for a custom prior ('package.module:function')"
        )
    factory = import_callable(spec["path"], f"{where}.path")
    try:
        prior = factory()
    except Exception as exc:
        raise ConfigError(
            f"{where}.path: calling {spec['path']!r}() raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(prior, Distribution):
        raise ConfigError(
            f"{where}.path: {spec['path']!r}() must return a torch.distributions."
            f"Distribution, got {type(prior).__name__}"
        )
    if len(prior.event_shape) != 1 or prior.batch_shape != torch.Size():
        raise ConfigError(
            f"{where}.path: the prior must have event shape (d,) and batch shape (), got "
            f"event shape {tuple(prior.event_shape)} and batch shape {tuple(prior.batch_shape)} "
            "(wrap independent 1-d priors in torch.distributions.Independent(..., 1))"
        )
    # Draw on a forked generator so checking the dtype does not shift the caller's seed stream.
    with torch.random.fork_rng(devices=[]):
        dtype = prior.sample().dtype
    if dtype != torch.float32:
        raise ConfigError(
            f"{where}.path: the prior must be float32 (build it from float32 tensors), "
            f"its samples are {dtype}"
        )
    return prior
