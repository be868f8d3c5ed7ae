"""Step `plot_posterior`: the pair plot of one posterior over its reference and true parameters."""

from __future__ import annotations

from pathlib import Path

from sbi_core.pipeline.common import load_observation, load_reference_samples, read_posterior_samples
from sbi_core.plots import plot_pair

__all__ = ["plot_posterior"]


def plot_posterior(name: str, method: str, posterior: str, observation: str, reference: str, output: str) -> None:
    """Pair plot of one posterior, over its reference samples and true parameters where known.

    Arguments:
        name: The analysis name (for the title).
        method: The method that made the posterior.
        posterior: Its InferenceData file (the parameter names are its variables).
        observation: The observation file (``theta_true`` where known).
        reference: The reference-samples file (possibly empty).
        output: The PNG file.
    """
    samples, parameter_names = read_posterior_samples(posterior)
    plot_pair(
        samples,
        parameter_names,
        output,
        reference=load_reference_samples(reference),
        truth=load_observation(observation).get("theta_true"),
        title=f"{name}: {method.upper()}, {Path(posterior).stem}",
    )
