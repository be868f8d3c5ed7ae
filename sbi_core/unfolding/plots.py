"""Figures of an unfolding: the unfolded spectra with their bands, and the regenerated population."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sbi_core.plots import plt, save_figure

__all__ = ["plot_unfolded_spectra", "plot_regenerated_population"]

_COLORS = {"unfolded": "tab:blue", "stat": "tab:blue", "estimator": "tab:green", "truth": "black",
           "prior": "tab:gray", "ibu": "tab:red"}


def _steps(ax: Any, low: NDArray, high: NDArray, values: NDArray, **style: Any) -> None:
    ax.stairs(values, np.append(low, high[-1]), **style)


def plot_unfolded_spectra(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> None:
    """One panel per parameter: the unfolded density with its bootstrap (stat) and estimator bands,
    the truth (closure tests), the training prior and IBU with its errors.

    Arguments:
        rows: :func:`~sbi_core.unfolding.spectra.binned_spectra`'s rows.
        path: The PNG.
        title: The figure title.

    Example:
        >>> from sbi_core.unfolding.spectra import binned_spectra
        >>> samples = np.random.default_rng(0).normal(size=(1000, 1))
        >>> plot_unfolded_spectra(binned_spectra(["mu"], [np.linspace(-3, 3, 13)], samples), "spectra.png")
    """
    names = list(dict.fromkeys(row["parameter"] for row in rows))
    columns = min(len(names), 3)
    lines = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.6 * lines), squeeze=False)
    try:
        for ax, name in zip(axes.flat, names):
            table = {key: np.array([row.get(key, np.nan) for row in rows if row["parameter"] == name])
                     for key in rows[0].keys() | {"truth", "prior", "ibu", "ibu_err", "stat_low", "estimator_low"}}
            low, high = table["bin_low"], table["bin_high"]
            edges = np.append(low, high[-1])
            if not np.isnan(table["estimator_low"]).all():
                ax.fill_between(edges, np.append(table["estimator_low"], table["estimator_low"][-1]),
                                np.append(table["estimator_high"], table["estimator_high"][-1]), step="post",
                                color=_COLORS["estimator"], alpha=0.25, lw=0, label="estimator spread (68%)")
            if not np.isnan(table["stat_low"]).all():
                ax.fill_between(edges, np.append(table["stat_low"], table["stat_low"][-1]),
                                np.append(table["stat_high"], table["stat_high"][-1]), step="post",
                                color=_COLORS["stat"], alpha=0.3, lw=0, label="bootstrap (68%)")
            _steps(ax, low, high, table["unfolded"], color=_COLORS["unfolded"], lw=1.8, label="NEB unfolded")
            if not np.isnan(table["truth"]).all():
                _steps(ax, low, high, table["truth"], color=_COLORS["truth"], lw=1.2, ls="--", label="truth")
            if not np.isnan(table["prior"]).all():
                _steps(ax, low, high, table["prior"], color=_COLORS["prior"], lw=1.0, ls=":", label="training prior")
            if not np.isnan(table["ibu"]).all():
                ax.errorbar((low + high) / 2, table["ibu"], yerr=table["ibu_err"], fmt="o", ms=3,
                            color=_COLORS["ibu"], label="IBU")
            ax.set_xlabel(name)
            ax.set_ylabel("density")
        for ax in axes.flat[len(names):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7, frameon=False)
        if title:
            fig.suptitle(title)
        save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_regenerated_population(
    observed: NDArray, regenerated: NDArray, path: str | os.PathLike[str], title: str = "", max_features: int = 9
) -> None:
    """Per feature of x, histograms of the observed population and of one simulated from the fitted source.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> plot_regenerated_population(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)), "regenerated.png")
    """
    observed = observed.reshape(len(observed), -1)
    regenerated = regenerated.reshape(len(regenerated), -1)
    shown = min(observed.shape[1], max_features)
    columns = min(shown, 3)
    lines = math.ceil(shown / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.2 * lines), squeeze=False)
    try:
        for j, ax in enumerate(axes.flat[:shown]):
            pooled = np.concatenate([observed[:, j], regenerated[:, j]])
            edges = np.linspace(*np.quantile(pooled, [0.001, 0.999]), 41)
            ax.hist(observed[:, j], bins=edges, density=True, histtype="step", color="black", lw=1.5, label="observed")
            ax.hist(regenerated[:, j], bins=edges, density=True, color="tab:blue", alpha=0.5, label="regenerated")
            ax.set_xlabel(f"x[{j}]")
        for ax in axes.flat[shown:]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7, frameon=False)
        note = f" (first {shown} of {observed.shape[1]} features)" if shown < observed.shape[1] else ""
        fig.suptitle(f"{title}{note}" if title else f"regenerated population{note}")
        save_figure(fig, path)
    finally:
        plt.close(fig)
