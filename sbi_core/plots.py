"""Figures for the report: pair plots, SBC rank histograms, coverage curves, predictive checks, loss curves.

Every function writes one PNG and closes its figure, so long workflows do not
accumulate open figures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from sbi_core.io import atomic_path  # noqa: E402

__all__ = [
    "plot_pair", "plot_sbc_ranks", "plot_loss", "plot_calibration_curve", "plot_posterior_predictive", "plot_cls_scan", "save_figure",
]

MAX_PAIR_PARAMETERS = 8
# Scatter panels get unreadable (and slow) beyond a few thousand points.
_MAX_SCATTER_POINTS = 2000
_DPI = 100
_ESTIMATE_COLOR = "tab:blue"
_REFERENCE_COLOR = "tab:orange"
_TRUTH_COLOR = "black"


def save_figure(fig: Figure, path: str | os.PathLike[str], tight: bool = True) -> None:
    """Writes `fig` as a PNG at `path` atomically (a killed job leaves no half-written plot), after
    ``tight_layout`` unless `tight` is false (a figure that placed its panels itself)."""
    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI, format="png")


def _check_names(parameter_names: Sequence[str], dim: int) -> list[str]:
    names = list(parameter_names)
    if len(names) != dim:
        raise ValueError(f"parameter_names: expected {dim} names, got {len(names)}")
    return names


def _thin(samples: NDArray, rng: np.random.Generator) -> NDArray:
    if samples.shape[0] <= _MAX_SCATTER_POINTS:
        return samples
    return samples[rng.choice(samples.shape[0], _MAX_SCATTER_POINTS, replace=False)]


def plot_pair(
    samples: NDArray,
    parameter_names: Sequence[str],
    path: str | os.PathLike[str],
    reference: NDArray | None = None,
    truth: NDArray | None = None,
    title: str = "",
) -> None:
    """Saves a pair (corner) plot of posterior samples as a PNG.

    Marginal histograms on the diagonal, pairwise scatter plots below it.
    Reference samples, if given, are overlaid in another colour; the true
    parameters, if given, are drawn as lines and markers. Only the first
    ``MAX_PAIR_PARAMETERS`` (8) parameters are shown, as the title then says.

    Arguments:
        samples: Posterior samples (the estimate), shape ``[S, d]``.
        parameter_names: The ``d`` parameter names, used as axis labels.
        path: Where to write the PNG.
        reference: Reference posterior samples, shape ``[S_ref, d]``.
        truth: The true parameters, shape ``[d]``.
        title: The figure title.

    Example:
        >>> samples = np.random.default_rng(0).normal(size=(1000, 2))
        >>> plot_pair(samples, ["mu", "sigma"], "pair.png", truth=np.zeros(2))
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 2:
        raise ValueError(f"samples: expected shape [S, d], got {list(samples.shape)}")
    dim = samples.shape[1]
    names = _check_names(parameter_names, dim)
    if reference is not None:
        reference = np.asarray(reference, dtype=float)
        if reference.ndim != 2 or reference.shape[1] != dim:
            raise ValueError(f"reference: expected shape [S_ref, {dim}], got {list(reference.shape)}")
    if truth is not None:
        truth = np.asarray(truth, dtype=float).reshape(-1)
        if truth.shape[0] != dim:
            raise ValueError(f"truth: expected {dim} values, got {truth.shape[0]}")

    shown = min(dim, MAX_PAIR_PARAMETERS)
    if shown < dim:
        note = f"first {shown} of {dim} parameters"
        title = f"{title} ({note})" if title else note.capitalize()

    rng = np.random.default_rng(0)
    scatter_samples = _thin(samples, rng)
    scatter_reference = None if reference is None else _thin(reference, rng)

    size = max(2.2 * shown, 4.0)
    fig = plt.figure(figsize=(size, size))
    # Fixed margins (inches) rather than tight_layout, which measures every panel's text: a quarter of
    # the plot's time. Panels share x down a column and y along a row of scatter panels, so only the
    # outer panels carry tick labels.
    grid = fig.add_gridspec(
        shown, shown, left=0.85 / size, right=1 - 0.2 / size, bottom=0.7 / size, top=1 - 0.55 / size,
        wspace=0.08, hspace=0.08,
    )
    axes = np.empty((shown, shown), dtype=object)
    try:
        for i in range(shown):
            for j in range(i + 1):
                sharey = axes[i, 0] if 0 < j < i else None
                ax = axes[i, j] = fig.add_subplot(grid[i, j], sharex=axes[j, j] if i > j else None, sharey=sharey)
                ax.xaxis.set_major_locator(MaxNLocator(4))
                ax.yaxis.set_major_locator(MaxNLocator(4))
                if i == j:
                    pooled = samples[:, i] if reference is None else np.concatenate([samples[:, i], reference[:, i]])
                    low, high = np.min(pooled), np.max(pooled)
                    if low == high:  # a constant parameter still gets a visible bar
                        low, high = low - 0.5, high + 0.5
                    edges = np.linspace(low, high, 41)
                    ax.hist(samples[:, i], bins=edges, density=True, color=_ESTIMATE_COLOR, alpha=0.6)
                    if reference is not None:
                        ax.hist(reference[:, i], bins=edges, density=True, histtype="step", color=_REFERENCE_COLOR, lw=1.5)
                    if truth is not None:
                        ax.axvline(truth[i], color=_TRUTH_COLOR, lw=1.2, ls="--")
                    ax.set_yticks([])
                else:
                    ax.scatter(scatter_samples[:, j], scatter_samples[:, i], s=2, alpha=0.3, color=_ESTIMATE_COLOR, rasterized=True)
                    if scatter_reference is not None:
                        ax.scatter(
                            scatter_reference[:, j], scatter_reference[:, i], s=2, alpha=0.3, color=_REFERENCE_COLOR, rasterized=True
                        )
                    if truth is not None:
                        ax.axvline(truth[j], color=_TRUTH_COLOR, lw=0.8, ls="--")
                        ax.axhline(truth[i], color=_TRUTH_COLOR, lw=0.8, ls="--")
                        ax.plot(truth[j], truth[i], marker="*", ms=9, color=_TRUTH_COLOR, ls="none")
                    if j > 0:
                        ax.tick_params(labelleft=False)
                if i == shown - 1:
                    ax.set_xlabel(names[j])
                else:
                    ax.tick_params(labelbottom=False)
                if j == 0 and i > 0:
                    ax.set_ylabel(names[i])

        handles = [plt.Rectangle((0, 0), 1, 1, color=_ESTIMATE_COLOR, alpha=0.6, label="estimate")]
        if reference is not None:
            handles.append(plt.Rectangle((0, 0), 1, 1, color=_REFERENCE_COLOR, label="reference"))
        if truth is not None:
            handles.append(plt.Line2D([], [], color=_TRUTH_COLOR, ls="--", marker="*", label="truth"))
        if shown > 1:
            # in the empty upper triangle, below the title
            fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1 - 0.2 / size, 1 - 0.55 / size), frameon=False)
        else:
            axes[0, 0].legend(handles=handles, frameon=False)
        if title:
            fig.suptitle(title, y=1 - 0.15 / size, va="top")
        save_figure(fig, path, tight=False)
    finally:
        plt.close(fig)


def plot_sbc_ranks(
    ranks: NDArray,
    num_samples: int,
    parameter_names: Sequence[str],
    path: str | os.PathLike[str],
    num_bins: int | None = None,
) -> None:
    """Saves SBC rank histograms, one panel per parameter, as a PNG.

    Each panel shades the central 99% band of the bin counts of a uniform rank
    histogram (binomial quantiles, bin by bin); bars outside it point to a
    miscalibrated posterior (a U shape: too narrow; a hump: too wide; a slope:
    biased).

    Arguments:
        ranks: SBC ranks, shape ``[N, d]``, e.g. from :func:`sbi_core.diagnostics.sbc_ranks`.
        num_samples: The number ``S`` of posterior samples the ranks were taken among.
        parameter_names: The ``d`` parameter names, used as panel titles.
        path: Where to write the PNG.
        num_bins: The number of bins; by default as in :func:`sbi_core.diagnostics.sbc_default_num_bins`.

    Example:
        >>> ranks = np.random.default_rng(0).integers(0, 101, size=(500, 2))
        >>> plot_sbc_ranks(ranks, 100, ["mu", "sigma"], "sbc.png")

    References:
        | Validating Bayesian Inference Algorithms with Simulation-Based Calibration (Talts et al., 2018)
        | https://arxiv.org/abs/1804.06788
    """
    # here, not at import: scipy.stats and the diagnostics cost 1.3 s, and most jobs that plot draw no ranks
    from scipy import stats

    from sbi_core.diagnostics.sbc import sbc_rank_histogram

    counts, edges, probabilities = sbc_rank_histogram(ranks, num_samples, num_bins)
    num_simulations, dim = np.shape(ranks)
    names = _check_names(parameter_names, dim)
    lower = stats.binom.ppf(0.005, num_simulations, probabilities)
    upper = stats.binom.ppf(0.995, num_simulations, probabilities)
    expected = num_simulations * probabilities

    ncols = min(dim, 4)
    nrows = math.ceil(dim / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.5 * ncols, 2.8 * nrows), squeeze=False)
    try:
        # Step curves over the bin edges: bins may hold different numbers of rank values.
        step_x = np.repeat(edges, 2)[1:-1]
        for j, ax in enumerate(axes.flat):
            if j >= dim:
                ax.axis("off")
                continue
            ax.fill_between(step_x, np.repeat(lower, 2), np.repeat(upper, 2), color="0.75", alpha=0.6, lw=0, zorder=1)
            ax.plot(step_x, np.repeat(expected, 2), color="0.3", lw=1, zorder=3)
            ax.bar(edges[:-1], counts[:, j], width=np.diff(edges), align="edge", color="tab:blue", alpha=0.7, ec="white", zorder=2)
            ax.set_xlim(edges[0], edges[-1])
            ax.set_title(names[j])
            ax.set_xlabel("rank")
            if j % ncols == 0:
                ax.set_ylabel("count")
        fig.suptitle(
            f"SBC ranks ({num_simulations} simulations, {num_samples} posterior samples each)\n"
            "grey: 99% band of a uniform rank histogram"
        )
        save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_loss(
    training_loss: Sequence[float],
    validation_loss: Sequence[float],
    path: str | os.PathLike[str],
    title: str = "",
    members: Sequence[tuple[Sequence[float], Sequence[float]]] = (),
) -> None:
    """Saves the training and validation loss per epoch as a PNG.

    The epoch of the lowest validation loss is marked.

    Arguments:
        training_loss: The training loss of each epoch.
        validation_loss: The validation loss of each epoch (may be empty).
        path: Where to write the PNG.
        title: The figure title.
        members: Further ensemble members' (training, validation) curves, drawn thin beside
            the first member's.

    Example:
        >>> plot_loss([3.0, 2.0, 1.5], [3.1, 2.2, 1.9], "loss.png", title="NPE")
    """
    training = np.asarray(training_loss, dtype=float)
    validation = np.asarray(validation_loss, dtype=float)
    if training.size == 0 and validation.size == 0:
        raise ValueError("training_loss: both training_loss and validation_loss are empty")

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        for member_training, member_validation in members:
            for curve, color in ((member_training, "tab:blue"), (member_validation, "tab:orange")):
                ax.plot(np.arange(1, len(curve) + 1), np.asarray(curve, dtype=float), color=color, lw=0.7, alpha=0.4)
        if training.size:
            ax.plot(np.arange(1, training.size + 1), training, color="tab:blue", label="training")
        if validation.size:
            epochs = np.arange(1, validation.size + 1)
            ax.plot(epochs, validation, color="tab:orange", label="validation")
            if np.any(np.isfinite(validation)):
                best = int(np.nanargmin(np.where(np.isfinite(validation), validation, np.nan)))
                ax.plot(epochs[best], validation[best], marker="o", color="tab:orange", ls="none", label=f"best (epoch {best + 1})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title or "Loss")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
        save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_calibration_curve(
    levels: Sequence[float],
    coverage: Sequence[float],
    band_low: Sequence[float],
    band_high: Sequence[float],
    path: str | os.PathLike[str],
    xlabel: str,
    ylabel: str,
    band_label: str,
    title: str = "",
) -> None:
    """Saves a coverage curve against the diagonal, with the band a calibrated posterior stays in.

    Serves expected HPD coverage and TARP's expected coverage probability: below
    the diagonal, truths fall outside the stated regions too often (overconfident);
    above it, too rarely (conservative).

    Arguments:
        levels: Credibility levels (x axis).
        coverage: The empirical coverage at each level.
        band_low: Lower edge of the band at each level.
        band_high: Upper edge of the band at each level.
        path: Where to write the PNG.
        xlabel: The x-axis label.
        ylabel: The y-axis label.
        band_label: The legend entry of the band, e.g. its confidence.
        title: The figure title.

    Example:
        >>> levels = np.linspace(0.05, 0.95, 19)
        >>> plot_calibration_curve(levels, levels, levels - 0.05, levels + 0.05, "coverage.png", "level", "coverage", "95%")
    """
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    try:
        ax.fill_between(levels, band_low, band_high, color="0.75", alpha=0.6, lw=0, label=band_label)
        ax.plot([0, 1], [0, 1], color="0.3", lw=1, ls="--", label="calibrated")
        ax.plot(levels, coverage, color=_ESTIMATE_COLOR, lw=2, marker="o", ms=3, label="estimate")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.text(0.97, 0.04, "overconfident", ha="right", va="bottom", color="0.4", fontsize=8, transform=ax.transAxes)
        ax.text(0.03, 0.96, "conservative", ha="left", va="top", color="0.4", fontsize=8, transform=ax.transAxes)
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.9), fontsize=8, frameon=False)
        ax.set_title(title, fontsize=9)
        save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_posterior_predictive(check: dict, path: str | os.PathLike[str], title: str = "") -> None:
    """Saves a posterior predictive check: the distance distribution and the per-feature comparison.

    Left: standardised distances of the predictive simulations from their mean,
    with the observation's distance and its predictive p-value. Right: per
    feature, the predictive median and 5-95% interval with the observation.

    Arguments:
        check: The result of :func:`sbi_core.diagnostics.posterior_predictive_check`.
        path: Where to write the PNG.
        title: The figure title.

    Example:
        >>> from sbi_core.diagnostics import posterior_predictive_check
        >>> rng = np.random.default_rng(0)
        >>> plot_posterior_predictive(posterior_predictive_check(np.zeros(3), rng.normal(size=(200, 3))), "ppc.png")
    """
    low, median, high = (np.asarray(q) for q in check["predictive_quantiles"])
    observed = np.asarray(check["x_observed"])
    features = np.arange(observed.size)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
    try:
        left.hist(check["distances_predictive"], bins=30, color=_ESTIMATE_COLOR, alpha=0.7, label="predictive draws")
        left.axvline(check["distance_observed"], color=_TRUTH_COLOR, lw=2,
                     label=f"observation (p = {check['distance_pvalue']:.3f})")
        left.set_xlabel("standardised distance from the predictive mean")
        left.set_ylabel("count")
        left.legend(fontsize=8, frameon=False)
        right.fill_between(features, low, high, color=_ESTIMATE_COLOR, alpha=0.3, lw=0, step="mid",
                           label="predictive 5-95%")
        right.plot(features, median, color=_ESTIMATE_COLOR, lw=1, drawstyle="steps-mid", label="predictive median")
        right.plot(features, observed, "o", color=_TRUTH_COLOR, ms=3, label="observation")
        right.set_xlabel("feature")
        right.set_ylabel("x")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.legend(fontsize=8, frameon=False)
        fig.suptitle(f"{title}\nposterior predictive check, {check['num_simulations']} simulations", fontsize=10)
        save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_cls_scan(
    scans: dict[str, tuple[dict, dict]], path: str | os.PathLike[str], poi: str = "mu", title: str = ""
) -> None:
    """Saves CLs against the POI, ours beside pyhf's, one panel per observation.

    Ours: observed CLs (solid) and the expected median with its ±1σ and ±2σ bands;
    pyhf: observed and expected median in black. The upper limit is where a curve
    crosses the CLs level (dotted).

    Arguments:
        scans: ``{observation: (ours, pyhf)}``, each a result of
            :func:`sbi_core.limits.cls_upper_limit` / :func:`sbi_core.limits.pyhf_upper_limit`.
        path: Where to write the PNG.
        poi: The POI's name, for the x axis.
        title: The figure title.
    """
    fig, axes = plt.subplots(1, len(scans), figsize=(5.0 * len(scans), 4.0), squeeze=False)
    try:
        for ax, (observation, (ours, pyhf)) in zip(axes.flat, scans.items(), strict=True):
            scan, expected = np.asarray(ours["scan"]), np.asarray(ours["cls_expected"])
            ax.fill_between(scan, expected[:, 0], expected[:, 4], color="#ffe066", lw=0, label="ours expected ±2σ")
            ax.fill_between(scan, expected[:, 1], expected[:, 3], color="#66cc66", lw=0, label="ours expected ±1σ")
            ax.plot(scan, expected[:, 2], color=_ESTIMATE_COLOR, ls="--", lw=1, label="ours expected")
            ax.plot(scan, ours["cls_observed"], color=_ESTIMATE_COLOR, lw=2,
                    label=f"ours observed: {ours['observed_limit']:.3g}")
            pyhf_expected = np.asarray(pyhf["cls_expected"])
            ax.plot(pyhf["scan"], pyhf_expected[:, 2], color=_TRUTH_COLOR, ls="--", lw=1, label="pyhf expected")
            ax.plot(pyhf["scan"], pyhf["cls_observed"], color=_TRUTH_COLOR, lw=1,
                    label=f"pyhf observed: {pyhf['observed_limit']:.3g}")
            ax.axhline(ours["level"], color="tab:red", ls=":", lw=1)
            ax.set_xlabel(poi)
            ax.set_ylabel("CLs")
            ax.set_ylim(0, 1.02)
            ax.set_title(observation)
            ax.legend(fontsize=7, frameon=False)
        fig.suptitle(title)
        save_figure(fig, path)
    finally:
        plt.close(fig)
