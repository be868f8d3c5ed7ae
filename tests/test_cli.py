"""The `sbi-core` command, called as a user would."""

from __future__ import annotations

import fractions
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
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
    assert any(line.startswith("slcp: 5 parameters") and "exact reference" in line for line in lines)


def test_inspect_refuses_a_foreign_file(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not torch")
    result = _run("inspect", str(tmp_path / "x.pt"))
    assert result.returncode == 2 and "x.pt: not an sbi_core estimator file" in result.stderr


def test_validate_refuses_a_repeated_key_naming_it_and_its_line(tmp_path):
    text = (REPO / "config/config.yaml").read_text().replace("    seed: 1\n", "    seed: 1\n    seed: 2\n", 1)
    (tmp_path / "twice.yaml").write_text(text)
    line = text.splitlines().index("    seed: 2") + 1
    result = _run("validate", str(tmp_path / "twice.yaml"))
    assert result.returncode == 2 and result.stdout == ""
    assert f"twice.yaml, line {line}: key 'seed' appears twice in one mapping (first on line {line - 1})" in result.stderr


def test_validate_refuses_cuda_without_a_gpu_unless_the_jobs_run_on_a_cluster(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["analyses"] = {"gpu": {**config["analyses"]["gaussian_linear"], "device": "cuda"}}
    (tmp_path / "gpu.yaml").write_text(yaml.safe_dump(config))
    cluster = _run("validate", "--cluster", str(tmp_path / "gpu.yaml"))
    assert cluster.returncode == 0, cluster.stderr
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    local = _run("validate", str(tmp_path / "gpu.yaml"))
    assert local.returncode == 2 and local.stdout == ""
    assert "analyses.gpu.device: 'cuda' requested but this machine has no CUDA device" in local.stderr


def test_inspect_refuses_a_pickled_object_without_suggesting_to_unpickle_it(tmp_path):
    torch.save({"state_dict": {}, "hyperparameters": "{}", "ratio": fractions.Fraction(1, 3)}, tmp_path / "npe.pt")
    result = _run("inspect", str(tmp_path / "npe.pt"))
    assert result.returncode == 2 and "npe.pt: not an sbi_core estimator file" in result.stderr
    assert "weights_only" not in result.stderr and "Traceback" not in result.stderr
