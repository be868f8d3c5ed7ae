"""Shared fixtures: the repository root, a tiny analysis config, and a user simulator module."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest

from sbi_core.config import validate_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

TINY_TRAINING = {
    "hidden_features": 16,
    "num_transforms": 2,
    "batch_size": 100,
    "max_epochs": 5,
    "patience": 3,
}


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def tiny_analysis() -> dict:
    """A gaussian_linear analysis with tiny budgets (defaults not yet filled in)."""
    return {
        "task": "gaussian_linear",
        "seed": 3,
        "simulations": {"train": 500, "test": 20, "shards": 2},
        "methods": ["npe"],
        "observations": [{"name": "o1", "theta": [0.1] * 10}],
        "training": dict(TINY_TRAINING),
        "sampling": {"num_samples": 50, "num_chains": 4, "warmup_steps": 10},
        "diagnostics": {"num_simulations": 20, "num_samples": 20, "c2st_num_samples": 50},
    }


def validated(analysis: dict, name: str = "demo") -> dict:
    """Validates one analysis as a whole config and returns it with defaults filled in."""
    config = {"analyses": {name: copy.deepcopy(analysis)}}
    return validate_config(config, SCHEMA)["analyses"][name]


@pytest.fixture
def user_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user module `usersim` on sys.path: a 2-d shifted-Gaussian simulator whose
    x is NaN whenever theta_1 > 0.8 (about 10% of a U(-1, 1) prior)."""
    module = tmp_path / "usersim.py"
    module.write_text(
        textwrap.dedent(
            """
            import torch

            def simulate(theta):
                x = theta + 0.1 * torch.randn_like(theta)
                x[theta[:, 0] > 0.8] = float("nan")
                return x

            def broken(theta):
                raise RuntimeError("detector offline")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "usersim:simulate"
