"""Step `plot_posterior`: the pair plot of one posterior over its reference and true parameters."""

from __future__ import annotations

from pathlib import Path

from sbi_core.pipeline.common import read_posterior_samples
from sbi_core.pipeline.observe import load_observation
from sbi_core.plots import plot_pair
from sbi_core.tasks import build_task

__all__ = ["plot_posterior"]


def plot_posterior(analysis: dict, name: str, method: str, observation: str, posterior: str, output: str) -> None:
    """Pair plot of one posterior, over its reference samples and true parameters where known."""
    task = build_task(analysis, f"analyses.{name}")
    data = load_observation(observation)
    plot_pair(
        read_posterior_samples(posterior, task.parameter_names),
        task.parameter_names,
        output,
        reference=data.get("reference_samples"),
        truth=data.get("theta_true"),
        title=f"{name}: {method.upper()}, {Path(posterior).stem}",
    )
