"""The design figure: EIG against the design (1-d curve or 2-d map) with the optimiser's paths,
and each method's best design re-estimated on fresh simulations."""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sbi_core.design.eig import EIGEstimate  # noqa: E402
from sbi_core.design.optimise import AscentResult  # noqa: E402
from sbi_core.design.tasks import DesignTask  # noqa: E402
from sbi_core.plots import save_figure  # noqa: E402

__all__ = ["plot_design"]

_MAX_PATHS = 16


def plot_design(
    task: DesignTask, candidates: torch.Tensor, curves: dict[str, EIGEstimate], paths: dict[str, AscentResult],
    results: dict[str, dict[str, Any]], path: str | os.PathLike[str], title: str = "",
) -> None:
    """Left: EIG over the candidates (a curve with its ±1 standard-error band per method for one
    design variable; a map of the first method with the ascent's paths for two; EIG by
    candidate rank otherwise). Right: each method's best design, re-estimated, with its error."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    flat = candidates.flatten(1).numpy()
    if flat.shape[1] == 1:
        order = np.argsort(flat[:, 0])
        for method, curve in curves.items():
            eig, err = curve.eig.numpy()[order], curve.stderr.numpy()[order]
            (line,) = left.plot(flat[order, 0], eig, label=curve.method)
            left.fill_between(flat[order, 0], eig - err, eig + err, color=line.get_color(), alpha=0.25)
            if method in paths:
                final = paths[method].final.flatten(1).numpy()[:, 0]
                left.plot(final, np.interp(final, flat[order, 0], eig), "v", color=line.get_color(), ms=5,
                          label=f"{method}: ascent's final starts")
        if task.exact_eig is not None:
            left.plot(flat[order, 0], task.exact_eig(candidates[order]).numpy(), "k--", lw=1, label="exact")
        left.set_xlabel(task.space.names[0])
        left.set_ylabel("EIG (nats)")
    elif flat.shape[1] == 2:
        curve = next(iter(curves.values()))
        image = left.tricontourf(flat[:, 0], flat[:, 1], curve.eig.numpy(), levels=20, cmap="viridis")
        fig.colorbar(image, ax=left, label=f"EIG, {curve.method} (nats)")
        for result in paths.values():
            trace = result.paths.flatten(2).numpy()[:, :_MAX_PATHS]
            left.plot(trace[:, :, 0], trace[:, :, 1], color="white", lw=0.7, alpha=0.8)
            left.plot(trace[-1, :, 0], trace[-1, :, 1], "w*", ms=6)
        names = [f"{n}_{t + 1}" for t in range(task.space.num_experiments) for n in task.space.names]
        left.set_xlabel(names[0])
        left.set_ylabel(names[1])
    else:
        for curve in curves.values():
            left.plot(np.sort(curve.eig.numpy())[::-1], label=curve.method)
        left.set_xlabel("candidate designs, ranked")
        left.set_ylabel("EIG (nats)")
    if flat.shape[1] != 2:
        left.legend(fontsize=7)
    methods = list(results)
    values = [results[m]["best_eig"] for m in methods]
    errors = [results[m]["best_eig_stderr"] for m in methods]
    right.bar(range(len(methods)), values, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
    if task.exact_eig is not None:
        right.plot(range(len(methods)), [results[m]["exact_eig_of_best"] for m in methods], "r_", ms=24, mew=2,
                   label="exact EIG of that design")
        right.legend(fontsize=7)
    right.set_xticks(range(len(methods)), methods)
    right.set_ylabel(f"EIG of the best design, re-estimated ({results[methods[0]]['reestimated_by']})")
    fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
