"""pyhf's own asymptotic CLs upper limit on a HistFactory model, to set beside a log-ratio model's.

The pyhf fit frees exactly the parameters the :class:`~sbi_core.tasks.histfactory.HistFactoryModel`
infers and fixes the others at pyhf's suggested initial values, as the model
does (pyhf's ``fixed_params``); the bounds are pyhf's suggested bounds. pyhf runs
on its numpy backend in float64, and the caller's backend is restored afterwards
(the pytorch backend would change torch's default dtype).

References:
    | pyhf: pure-Python implementation of HistFactory statistical models
    | (Heinrich et al., 2021) https://doi.org/10.21105/joss.02823
    | Asymptotic formulae for likelihood-based tests of new physics (Cowan et al., 2011)
    | https://arxiv.org/abs/1007.1727
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyhf
import torch
from torch import Tensor

from sbi_core.tasks.histfactory.model import HistFactoryModel, numpy_backend

__all__ = ["pyhf_upper_limit", "pyhf_fixed_params"]


def pyhf_fixed_params(model: HistFactoryModel) -> list[bool]:
    """Returns pyhf's ``fixed_params``: every parameter the model does not infer is fixed.

    Arguments:
        model: The batched HistFactory model.

    Returns:
        One flag per entry of pyhf's parameter vector.

    Example:
        >>> model, _ = build_histfactory({"workspace": "config/workspaces/simple.json",
        ...                                "parameters": ["mu", "uncorr_bkguncrt[0]"]}, "w")
        >>> pyhf_fixed_params(model)
        [False, False, True]
    """
    inferred = set(model.parameter_names)
    return [p.fixed or p.name not in inferred for p in model.all_parameters]


def pyhf_upper_limit(
    model: HistFactoryModel,
    scan: Sequence[float] | Tensor,
    data: Tensor | Sequence[float] | None = None,
    level: float = 0.05,
) -> dict[str, Any]:
    """Computes pyhf's observed and expected CLs upper limits (``qtilde``, asymptotic, linear scan).

    Wraps ``pyhf.infer.intervals.upper_limits.upper_limit(data, pdf, scan, level,
    return_results=True, test_stat="qtilde", fixed_params=...)``.

    Arguments:
        model: The batched HistFactory model (its workspace, measurement and inferred parameters).
        scan: The POI values to test, increasing.
        data: ``x`` in the model's layout (main data, then auxiliary data if the model
            includes them); with main data only, pyhf's nominal auxiliary data are
            appended. Default: the workspace's observations.
        level: The CLs level, in ``(0, 1)``.

    Returns:
        A JSON-serialisable dict with the keys of
        :func:`~sbi_core.limits.cls_upper_limit` that pyhf provides: ``observed_limit``,
        ``expected_limits`` (-2..+2 sigma), ``level``, ``scan``, ``cls_observed``,
        ``cls_expected`` ``[G][5]``, ``fixed_params``, ``seconds``.

    Raises:
        ValueError: Naming the argument: a level outside (0, 1), a scan not increasing,
            data of the wrong length.

    Example:
        >>> model, _ = build_histfactory({"workspace": "config/workspaces/simple.json"}, "w")
        >>> round(pyhf_upper_limit(model, np.linspace(0, 5, 21))["observed_limit"], 4)
        1.0176
    """
    started = time.perf_counter()
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level: expected a CLs level in (0, 1), e.g. 0.05, got {level!r}")
    scan = np.asarray(torch.as_tensor(scan, dtype=torch.float64)).reshape(-1)
    if len(scan) < 2 or not (np.diff(scan) > 0).all():
        raise ValueError(f"scan: expected at least 2 increasing POI values, got {scan.tolist()}")
    x = model.observed_data() if data is None else torch.as_tensor(data)
    x = np.asarray(x.detach().cpu().to(torch.float64)).reshape(-1)
    if len(x) != model.num_x:
        raise ValueError(f"data: expected {model.num_x} values in the model's layout, got {len(x)}")
    pdf = model.pyhf_model
    if not model.include_auxdata:
        x = np.concatenate([x, np.asarray(pdf.config.auxdata, dtype=np.float64)])
    fixed_params = pyhf_fixed_params(model)
    with numpy_backend():
        observed, expected, (_, results) = pyhf.infer.intervals.upper_limits.upper_limit(
            x.tolist(),
            pdf,
            scan,
            level=level,
            return_results=True,
            test_stat="qtilde",
            fixed_params=fixed_params,
        )
    return {
        "observed_limit": float(observed),
        "expected_limits": [float(limit) for limit in expected],
        "level": float(level),
        "scan": scan.tolist(),
        "cls_observed": [float(result[0]) for result in results],
        "cls_expected": [[float(cls) for cls in result[1]] for result in results],
        "fixed_params": fixed_params,
        "seconds": time.perf_counter() - started,
    }
