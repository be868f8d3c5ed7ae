"""Shared fixtures: the repository root, tiny analysis configs, a user simulator module,
and one reference run of the tiny workflow that several tests compare against."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

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


SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# One torch thread per job in every run that is compared number for number, so
# that sums are taken in the same order on any core count and under SLURM.
SAME_THREADS = ("--max-threads", "1")
TINY_WORKFLOW = "tiny"
TINY_WORKFLOW_CONFIG = {
    "targets": [TINY_WORKFLOW],
    "analyses": {
        TINY_WORKFLOW: {
            "task": "gaussian_linear",
            "seed": 5,
            "simulations": {"train": 400, "test": 20},
            "methods": ["npe", "nre"],
            "observations": [{"name": "o1", "theta": [0.1] * 10}],
            "training": TINY_TRAINING,
            "sampling": {"num_samples": 50, "num_chains": 10, "warmup_steps": 20},
            # no predictive checks: test_workflow covers them; fewer jobs in the four runs of this config
            "diagnostics": {"num_simulations": 20, "num_samples": 20, "c2st_num_samples": 50,
                            "ppc_num_simulations": 0},
        }
    },
}


def snakemake_command(folder: Path, *options: str) -> list[str]:
    """Runs the tiny workflow config (written into `folder`) with `options`, at most 10 minutes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(TINY_WORKFLOW_CONFIG))
    return ["timeout", "-k", "30", "600", *SNAKEMAKE, "--directory", str(folder),
            "--configfile", str(folder / "config.yaml"), *options]


def workflow_env() -> dict[str, str]:
    """The environment of a workflow run: this venv first on PATH, one BLAS thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "USER": os.environ.get("USER", "root"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def run_tiny_workflow(folder: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(folder, *options), capture_output=True, text=True,
                          env=workflow_env(), cwd=folder)


def summary_numbers(summary: dict) -> dict:
    """Everything in a summary.json but timings and provenance: what must reproduce exactly."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "seconds" not in k and k != "provenance"}
        return value
    return strip(summary)


@pytest.fixture(scope="session")
def tiny_reference_run(tmp_path_factory) -> Path:
    """The tiny workflow run once, locally, uninterrupted: results/<TINY_WORKFLOW>/ inside."""
    folder = tmp_path_factory.mktemp("reference-run")
    result = run_tiny_workflow(folder, "--cores", "2", *SAME_THREADS)
    assert result.returncode == 0, result.stderr[-5000:]
    return folder


# ---------------------------------------------------------------------- device (as zuko's tests do)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", default="cpu",
        help="torch device of the tests that take the `device` fixture, e.g. cuda (default: cpu)",
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """The `--device` option: the same tests run on `cuda` where a GPU is (skipped where none is)."""
    import torch

    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"--device {name}: this machine has no CUDA device")
    return name
