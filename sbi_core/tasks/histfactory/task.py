r"""The ``histfactory`` task: a pyhf workspace as simulator, prior and exact likelihood.

The config block names a workspace file and, optionally, a measurement, the
parameters to infer, prior overrides, and whether ``x`` includes the auxiliary
data. The reference posterior samples prior times exact likelihood with the
batched MCMC sampler, so every neural method gets a C2ST against it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_core.errors import ConfigError
from sbi_core.sampling.posterior import RatioPosterior
from sbi_core.tasks.base import Task
from sbi_core.tasks.histfactory.likelihood import HistFactoryLikelihood
from sbi_core.tasks.histfactory.model import HistFactoryModel
from sbi_core.tasks.histfactory.priors import histfactory_prior
from sbi_core.tasks.histfactory.workspace import PYHF_ERRORS, load_workspace, measurement_name

__all__ = ["build_histfactory", "build_histfactory_task", "sample_reference_posterior", "DATA_MODES"]

SETTINGS_KEYS = ("workspace", "measurement", "parameters", "priors", "data")
DATA_MODES = ("main", "main_and_auxiliary")
# Reference MCMC: chains per observation and adapting steps (thinning is 3 d).
REFERENCE_NUM_CHAINS = 100
REFERENCE_WARMUP_STEPS = 300


def build_histfactory(
    settings: dict[str, Any], where: str, base_dir: str | Path = "."
) -> tuple[HistFactoryModel, Distribution]:
    """Reads the workspace a ``histfactory`` config block names; returns its batched model and the prior.

    Settings (types are the schema's job; meaning is checked here):

    - ``workspace``: path of a pyhf JSON workspace, relative to ``base_dir`` (required);
    - ``measurement``: a measurement's name (default: the workspace's first);
    - ``parameters``: the parameters to infer, by pyhf name (``"mu"``,
      ``"staterror_SR[0]"``; a vector parameter's own name, e.g. ``"staterror_SR"``,
      stands for its bins that pyhf does not fix). Default: the POI, then every
      other parameter pyhf does not fix, in pyhf's order. The others stay at pyhf's
      suggested initial values;
    - ``priors``: ``{name: {type: uniform, low, high} | {type: normal, mean, std}}``
      replacing the default priors (see :mod:`sbi_core.tasks.histfactory.priors`);
    - ``data``: ``"main"`` (default), ``x`` is the main data; or
      ``"main_and_auxiliary"``, the main data then pyhf's auxiliary data. The
      default priors are the constraint terms' posteriors in both cases, so with
      auxiliary data in ``x`` the constraints count once in the prior and once in
      the likelihood; override ``priors`` to avoid it.

    Arguments:
        settings: The config block.
        where: Its dotted config key, e.g. ``"analyses.demo.histfactory"``.
        base_dir: The folder a relative workspace path is relative to.

    Returns:
        The model and the prior (float32, event shape ``(d,)``).

    Raises:
        ConfigError: Naming the key and the workspace file (and pyhf's message).

    Example:
        >>> model, prior = build_histfactory({"workspace": "config/workspaces/simple.json"}, "w")
        >>> model.parameter_names
        ('mu', 'uncorr_bkguncrt[0]', 'uncorr_bkguncrt[1]')
    """
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'workspace' key, got {settings!r}")
    for key in settings:
        if key not in SETTINGS_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key; allowed: {', '.join(SETTINGS_KEYS)}")
    if not isinstance(settings.get("workspace"), str) or not settings["workspace"]:
        raise ConfigError(f"{where}.workspace: required, the path of a pyhf JSON workspace")
    data = settings.get("data", "main")
    if data not in DATA_MODES:
        raise ConfigError(f"{where}.data: expected one of {', '.join(DATA_MODES)}, got {data!r}")
    path = Path(base_dir) / settings["workspace"]
    workspace = load_workspace(path, f"{where}.workspace")
    measurement = measurement_name(workspace, settings.get("measurement"), f"{where}.measurement", path)
    source = f"workspace {str(path)!r}, measurement {measurement!r}"
    try:
        model = HistFactoryModel(workspace, measurement, None, data == "main_and_auxiliary")
    # pyhf meets some schema-valid but inconsistent workspaces with a plain TypeError,
    # ValueError or KeyError (e.g. a lumi modifier the measurement does not configure).
    except (*PYHF_ERRORS, TypeError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"{where}.workspace: pyhf cannot build the model of {source}: {type(exc).__name__}: {exc}"
        ) from exc
    if "parameters" in settings:
        names = _parameter_names(settings["parameters"], model, f"{where}.parameters", source)
        model = HistFactoryModel(workspace, measurement, names, model.include_auxdata)
    elif not model.parameters:
        raise ConfigError(f"{where}.parameters: {source} has no parameter that pyhf does not fix")
    priors = settings.get("priors", {})
    if not isinstance(priors, dict):
        raise ConfigError(f"{where}.priors: expected a mapping from parameter names to priors, got {priors!r}")
    prior = histfactory_prior(model.parameters, priors, f"{where}.priors", source)
    return model, prior


def build_histfactory_task(settings: dict[str, Any], where: str, base_dir: str | Path = ".") -> Task:
    """Builds the ``histfactory`` task: prior, pyhf parameter names, simulator and exact reference posterior.

    The simulator draws ``x [N, n_x]`` around pyhf's expected data at ``theta [N, d]``
    (:meth:`HistFactoryModel.simulate`); the reference posterior samples prior times
    exact likelihood (:func:`sample_reference_posterior`).

    Arguments:
        settings: The config block (see :func:`build_histfactory`).
        where: Its dotted config key, for error messages.
        base_dir: The folder a relative workspace path is relative to.

    Returns:
        The task, named ``"histfactory"``.

    Raises:
        ConfigError: Naming the key and the workspace file (and pyhf's message).

    Example:
        >>> task = build_histfactory_task({"workspace": "config/workspaces/simple.json"}, "w")
        >>> task.simulate(task.prior.sample((4,))).shape
        torch.Size([4, 2])

    References:
        | pyhf: pure-Python implementation of HistFactory statistical models
        | (Heinrich et al., 2021) https://doi.org/10.21105/joss.02823
    """
    model, prior = build_histfactory(settings, where, base_dir)
    likelihood = HistFactoryLikelihood(model)
    return Task(
        name="histfactory",
        prior=prior,
        parameter_names=model.parameter_names,
        simulator=model.simulate,
        reference_posterior=partial(sample_reference_posterior, likelihood, prior),
        observed_data=model.observed_data(),
    )


def sample_reference_posterior(
    likelihood: HistFactoryLikelihood,
    prior: Distribution,
    x_o: Tensor,
    num_samples: int,
    num_chains: int = REFERENCE_NUM_CHAINS,
    warmup_steps: int = REFERENCE_WARMUP_STEPS,
) -> Tensor:
    """Samples the exact posterior, prior times HistFactory likelihood, by batched MCMC.

    Differential-evolution Metropolis (:func:`~sbi_core.sampling.sample_mcmc`) with
    chains started at SIR draws, thinned by ``3 d``; seeded from torch's global
    generator.

    Arguments:
        likelihood: The exact likelihood.
        prior: The prior.
        x_o: One observation, ``n_x`` values (shape ``(n_x,)`` or ``(1, n_x)``).
        num_samples: The number of samples.
        num_chains: Chains (at most ``num_samples``, at least 4).
        warmup_steps: Adapting steps, discarded.

    Returns:
        The samples ``[num_samples, d]``.

    Example:
        >>> sample_reference_posterior(likelihood, prior, torch.tensor([51.0, 48.0]), 100).shape
        torch.Size([100, 3])
    """
    x_o = torch.as_tensor(x_o, dtype=torch.float32)
    if x_o.numel() != likelihood.x_shape[0]:
        raise ValueError(
            f"x_o: expected {likelihood.x_shape[0]} values, got shape {list(x_o.shape)}"
        )
    samples = RatioPosterior(likelihood, prior).sample(
        x_o.reshape(1, -1),
        num_samples,
        method="mcmc",
        num_chains=max(4, min(num_chains, num_samples)),
        warmup_steps=warmup_steps,
        thin=3 * likelihood.dim_theta,
    )
    return samples[0]


def _parameter_names(names: Any, model: HistFactoryModel, where: str, source: str) -> list[str]:
    """Expands and checks the ``parameters`` list against the model's parameters."""
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: expected a non-empty list of parameter names, got {names!r}")
    by_name = {p.name: p for p in model.all_parameters}
    by_set: dict[str, list[str]] = {}
    for p in model.all_parameters:
        if p.name != p.set_name and not p.fixed:
            by_set.setdefault(p.set_name, []).append(p.name)
    expanded: list[str] = []
    for i, name in enumerate(names):
        if name in by_set:
            expanded.extend(by_set[name])
        elif name not in by_name:
            raise ConfigError(
                f"{where}[{i}]: {source} has no parameter {name!r}; its parameters are "
                f"{', '.join(by_name)}"
            )
        elif by_name[name].fixed:
            raise ConfigError(
                f"{where}[{i}]: {name!r} is fixed in {source} (by the measurement's config, or a "
                "bin without uncertainty or yield), so it cannot be inferred"
            )
        else:
            expanded.append(name)
    duplicates = sorted({n for n in expanded if expanded.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: each parameter may be named once; repeated: {', '.join(duplicates)}")
    return expanded
