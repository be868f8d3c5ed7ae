"""Step `posterior_predictive`: simulate at posterior samples of one observation and compare with it."""

from __future__ import annotations

import time
from typing import Any
from pathlib import Path

import numpy as np
import torch

from sbi_core.diagnostics import posterior_predictive_check
from sbi_core.io import provenance, write_json
from sbi_core.pipeline.common import load_observation, read_posterior_samples
from sbi_core.plots import plot_posterior_predictive
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import build_task

__all__ = ["posterior_predictive"]


def posterior_predictive(
    task: dict[str, Any],
    name: str,
    method: str,
    seed: int,
    num_simulations: int,
    observation: str,
    posterior: str,
    result: str,
    plot: str,
) -> None:
    """Simulates at `num_simulations` posterior samples (``diagnostics.ppc_num_simulations``,
    evenly spaced in the file), in one batch; writes the check's numbers (JSON) and its plot."""
    start = time.perf_counter()
    built = build_task(task, f"analyses.{name}")
    observation_name = Path(posterior).stem
    x_o = load_observation(observation)["x_o"]
    samples, _ = read_posterior_samples(posterior)
    num = min(num_simulations, len(samples))
    theta = torch.as_tensor(samples[np.linspace(0, len(samples) - 1, num).round().astype(int)], dtype=torch.float32)
    seed_everything(derive_seed(seed, "ppc", method, observation_name))
    predictive = built.simulate(theta).numpy()
    check = posterior_predictive_check(x_o, predictive)
    plot_posterior_predictive(check, plot, title=f"{name}: {method.upper()}, {observation_name}")
    write_json(
        result,
        {
            "analysis": name,
            "method": method,
            "observation": observation_name,
            **check,
            "seconds": time.perf_counter() - start,
            "provenance": provenance({"task": task, "num_simulations": num_simulations}, seed),
        },
    )
