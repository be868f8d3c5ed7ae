"""The `sbi-core` command, called as a user would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

SBI_CORE = shutil.which("sbi-core", path=str(Path(sys.executable).parent))


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([SBI_CORE, *args], capture_output=True, text=True, cwd=cwd)


def test_validate_the_default_config():
    result = _run("validate", "config/config.yaml")
    assert result.returncode == 0, result.stderr
    assert "gaussian_linear: task gaussian_linear, methods npe, nle, nre: ok" in result.stdout


def test_validate_names_the_bad_key(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["analyses"]["gaussian_linear"]["task"] = "three_moons"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = _run("validate", str(tmp_path / "bad.yaml"))
    assert result.returncode == 2
    assert "analyses.gaussian_linear.task: 'three_moons' is not one of" in result.stderr


def test_validate_a_missing_file(tmp_path):
    result = _run("validate", str(tmp_path / "none.yaml"))
    assert result.returncode == 2 and "none.yaml: could not read the config" in result.stderr


def test_tasks_lists_the_benchmarks():
    result = _run("tasks")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("gaussian_linear: 10 parameters") and "exact reference" in lines[0]
    assert any(line.startswith("two_moons: 2 parameters") for line in lines)
    assert any(line.startswith("slcp: 5 parameters") and "no reference" in line for line in lines)


def test_inspect_refuses_a_foreign_file(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not torch")
    result = _run("inspect", str(tmp_path / "x.pt"))
    assert result.returncode == 2 and "x.pt: not an sbi_core estimator file" in result.stderr
