"""The conda spec (envs/sbi.yaml) mirrors the pip lock; the pins are exact; torch and six are there."""

from __future__ import annotations

import re
from importlib import metadata

import yaml

from tests.conftest import REPO


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "envs/requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[A-Za-z0-9_.+-]+", version), f"not an exact pin: {line}"
            pins[name.lower()] = version
    return pins


def test_lock_pins_torch_and_six_exactly():
    lock = _lock()
    assert lock["torch"] == "2.13.0"
    assert lock["sbi"] == "0.27.0"
    assert "six" in lock


def test_conda_spec_mirrors_the_lock():
    spec = yaml.safe_load((REPO / "envs/sbi.yaml").read_text())
    pip_section = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    conda_pins = {}
    for line in pip_section:
        if line.startswith("-e"):
            continue
        name, _, version = line.partition("==")
        conda_pins[name.lower()] = version
    assert conda_pins == _lock()
    assert "python=3.11" in spec["dependencies"]


def test_installed_environment_matches_the_lock():
    """What `make` installed is what the lock says (the CPU wheel's +cpu suffix aside)."""
    for name, version in _lock().items():
        installed = metadata.version(name).split("+")[0]
        assert installed == version, f"{name}: installed {installed}, locked {version}"


def test_pyproject_declares_torch_pin_and_six():
    text = (REPO / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in text and '"six"' in text
