"""Snakemake invocations that need no finished run: lint and formatting, the SLURM profile's dry run,
configs refused before any job, which analyses a config file builds, a failing shard retried.
Each is one or two invocations in a folder of its own, mostly start-up (imports, the config check)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sbi_core.seeding import derive_seed
from tests.conftest import REPO, SNAKEMAKE, TINY_WORKFLOW, TINY_WORKFLOW_CONFIG

# ---------------------------------------------------------------------- invocations without a run
# Each check below is one or two Snakemake invocations in a folder of its own, each one process
# that is mostly start-up (imports, the config check): `invocations` starts them all when the
# first of these tests asks, two at a time on the two cores, and each test then asserts on its own.


def _snakemake(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], capture_output=True, text=True, **kwargs)


def _lint(folder: Path) -> subprocess.CompletedProcess:
    return _snakemake("--lint", "--directory", str(folder), "--configfile", str(REPO / "config/config.yaml"))


def _slurm_dry_run(folder: Path) -> subprocess.CompletedProcess:
    """The default analysis on the CPU beside a copy on cuda, through the SLURM profile."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["analyses"]["on_gpu"] = {**config["analyses"]["gaussian_linear"], "device": "cuda"}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return _snakemake("-n", "--profile", str(REPO / "workflow/profiles/slurm"), "--directory", str(folder),
                      "--configfile", str(folder / "config.yaml"))


def _bad_config(folder: Path) -> subprocess.CompletedProcess:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["analyses"]["gaussian_linear"]["simulations"]["train"] = -1
    (folder / "bad.yaml").write_text(yaml.safe_dump(config))
    return _snakemake("--cores", "1", "--directory", str(folder), "--configfile", str(folder / "bad.yaml"))


def _hostile_name(folder: Path) -> subprocess.CompletedProcess:
    """An analysis named `..` would put observations/, logs/ and benchmarks/ beside results/."""
    work = folder / "work"
    work.mkdir()
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["analyses"] = {"..": config["analyses"]["gaussian_linear"]}
    (folder / "hostile.yaml").write_text(yaml.safe_dump(config))
    return _snakemake("--cores", "1", "--directory", str(work), "--configfile", str(folder / "hostile.yaml"))


def _my_configfile(folder: Path) -> subprocess.CompletedProcess:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["analyses"] = {"mine": config["analyses"]["gaussian_linear"]}
    (folder / "my.yaml").write_text(yaml.safe_dump(config))
    return _snakemake("-n", "--directory", str(folder), "--configfile", str(folder / "my.yaml"))


def _no_configfile(folder: Path) -> subprocess.CompletedProcess:
    return _snakemake("-n", "--directory", str(folder))


def _repeated_key(folder: Path) -> subprocess.CompletedProcess:
    """Snakemake's own YAML reader would let the second `seed:` win."""
    text = (REPO / "config/config.yaml").read_text().replace("    seed: 1\n", "    seed: 1\n    seed: 2\n", 1)
    (folder / "twice.yaml").write_text(text)
    return _snakemake("-n", "--directory", str(folder), "--configfile", str(folder / "twice.yaml"))


def _cuda_without_gpu(folder: Path) -> subprocess.CompletedProcess:
    """A local run (not a dry run: the executor is known only when the run starts)."""
    config = {"analyses": {"gpu": {**TINY_WORKFLOW_CONFIG["analyses"][TINY_WORKFLOW], "device": "cuda"}}}
    (folder / "gpu.yaml").write_text(yaml.safe_dump(config))
    return _snakemake("--cores", "1", "--directory", str(folder), "--configfile", str(folder / "gpu.yaml"))


FLAKY_SIMULATOR = '''
from pathlib import Path

import torch

def simulate(theta):
    """Shard 0 (26 rows) always fails; shard 1 (25 rows) fails on its first attempt only.
    The config check's 2-row probe passes."""
    if len(theta) > 2:
        attempts = Path(f"attempts_{len(theta)}.txt")
        attempt = len(attempts.read_text().splitlines()) + 1 if attempts.exists() else 1
        attempts.write_text("attempt\\n" * attempt)
        if len(theta) == 26 or attempt == 1:
            raise RuntimeError(f"worker node lost (attempt {attempt})")
    return theta + 0.1 * torch.randn_like(theta)
'''


def _flaky_run(folder: Path) -> subprocess.CompletedProcess:
    (folder / "flaky.py").write_text(FLAKY_SIMULATOR)
    config = {
        "simulate_retries": 1,
        "analyses": {"flaky": {
            "task": "custom", "simulator": "flaky:simulate", "seed": 9,
            "prior": {"type": "box_uniform", "low": [-1, -1], "high": [1, 1]},
            "simulations": {"train": 51, "test": 10, "shards": 2},
            "methods": ["npe"], "observations": [{"name": "o", "theta": [0.0, 0.0]}],
            "diagnostics": {"num_simulations": 10},
        }},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    env = {"PYTHONPATH": str(folder), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(folder)}
    return _snakemake("--directory", str(folder), "--configfile", str(folder / "config.yaml"), "--cores", "2",
                      "--max-threads", "1", "--keep-going", "results/flaky/simulations/train.npz",
                      env=env, timeout=300)


INVOCATIONS = {  # the longest first
    "flaky_run": _flaky_run, "slurm_dry_run": _slurm_dry_run, "lint": _lint, "my_configfile": _my_configfile,
    "no_configfile": _no_configfile, "bad_config": _bad_config, "hostile_name": _hostile_name,
    "cuda_without_gpu": _cuda_without_gpu, "repeated_key": _repeated_key,
}


@pytest.fixture(scope="module")
def invocations(tmp_path_factory):
    """name -> (its folder, the future of its CompletedProcess); `.result()` waits for it."""
    with ThreadPoolExecutor(2) as pool:
        started = {}
        for name, invocation in INVOCATIONS.items():
            folder = tmp_path_factory.mktemp(name)
            started[name] = folder, pool.submit(invocation, folder)
        yield started


def test_lint_is_clean(invocations):
    result = invocations["lint"][1].result()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_snakefmt_is_clean():
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent))
    files = [str(REPO / "Snakefile"), *map(str, (REPO / "workflow/rules").glob("*.smk"))]
    result = subprocess.run([snakefmt, "--check", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dry_run_through_the_slurm_profile_asks_a_gpu_only_for_cuda_analyses(invocations):
    """The default analysis on the CPU beside a copy on cuda: only the cuda copy's device jobs get a GPU."""
    result = invocations["slurm_dry_run"][1].result()
    assert result.returncode == 0, result.stderr[-3000:]
    for rule in ("simulate", "merge_simulations", "observe", "reference_posterior", "train", "sample", "diagnose",
                 "c2st", "plot_posterior", "posterior_predictive", "report", "all"):
        assert f"\n{rule} " in result.stdout, rule
    jobs = [block for block in result.stdout.split("\nrule ")[1:] if not block.startswith("all:")]
    resources = {}
    for block in jobs:
        rule = block.split(":", 1)[0]
        analysis = next(line for line in block.splitlines() if "analysis=" in line).split("analysis=")[1].split(",")[0]
        line = next((line for line in block.splitlines() if line.strip().startswith("resources:")), "")
        resources.setdefault((rule, analysis), []).append(line)
    assert len(resources["train", "gaussian_linear"]) == len(resources["train", "on_gpu"]) == 3  # NPE, NLE, NRE
    for (rule, analysis), lines in resources.items():
        for line in lines:
            wants_gpu = analysis == "on_gpu" and rule in ("train", "sample", "diagnose")
            assert ("gpu=1" in line) == wants_gpu, (rule, analysis, line)
            assert "gpu_model" not in line, (rule, analysis, line)
            if rule not in ("merge_simulations", "observe", "plot_posterior", "report"):  # localrules
                assert "slurm_partition=debug" in line, (rule, line)
    assert all("mem_mb=8000" in line and "runtime=240" in line for line in resources["diagnose", "gaussian_linear"])


def test_bad_config_stops_snakemake_before_any_job(invocations):
    folder, result = invocations["bad_config"]
    result = result.result()
    assert result.returncode != 0
    assert "analyses.gaussian_linear.simulations.train: -1 is less than the minimum of 1" in result.stderr
    assert not (folder / "results").exists()


def test_a_repeated_yaml_key_stops_snakemake_naming_key_and_line(invocations):
    folder, result = invocations["repeated_key"]
    result = result.result()
    line = (folder / "twice.yaml").read_text().splitlines().index("    seed: 2") + 1
    assert result.returncode != 0  # a dry run logs to stdout
    output = result.stdout + result.stderr
    assert f"twice.yaml, line {line}: key 'seed' appears twice in one mapping (first on line {line - 1})" in output
    assert not (folder / "results").exists()


def test_cuda_without_a_gpu_stops_a_local_run_before_any_job(invocations):
    folder, result = invocations["cuda_without_gpu"]
    result = result.result()
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert result.returncode != 0
    assert "analyses.gpu.device: 'cuda' requested but this machine has no CUDA device" in result.stderr
    assert not (folder / "results").exists()


def test_a_hostile_analysis_name_writes_nothing_anywhere(invocations):
    """An analysis named `..` would put observations/, logs/ and benchmarks/ beside results/."""
    folder, result = invocations["hostile_name"]
    result = result.result()
    assert result.returncode != 0
    assert "analyses: '..' does not match" in result.stderr, result.stderr[-2000:]
    assert sorted(p.name for p in folder.iterdir()) == ["hostile.yaml", "work"]
    assert [p.name for p in (folder / "work").iterdir()] in ([], [".snakemake"])


def test_your_configfile_is_your_analysis(invocations):
    """`--configfile my.yaml` builds my.yaml's analyses, not the embedded default; no config builds the default."""
    mine = invocations["my_configfile"][1].result()
    assert mine.returncode == 0, mine.stderr[-3000:]
    assert "analysis=mine" in mine.stdout and "analysis=gaussian_linear" not in mine.stdout
    default = invocations["no_configfile"][1].result()
    assert default.returncode == 0, default.stderr[-3000:]
    assert "analysis=gaussian_linear" in default.stdout and "analysis=mine" not in default.stdout


def test_a_failing_shard_is_retried_then_named_with_its_seed(invocations):
    folder, result = invocations["flaky_run"]
    result = result.result()
    assert result.returncode != 0 and "Trying to restart job" in result.stderr
    # Each shard ran twice (once plus simulate_retries); shard 1 succeeded on its retry.
    assert [(folder / f"attempts_{n}.txt").read_text().count("attempt") for n in (26, 25)] == [2, 2]
    assert np.load(folder / "results/flaky/simulations/train/shard_1.npz")["theta"].shape == (25, 2)
    assert not (folder / "results/flaky/simulations/train/shard_0.npz").exists()
    log = (folder / "results/flaky/logs/simulate/train_0.log").read_text()
    shard_seed = derive_seed(9, "simulate", "train", 0)
    assert f"simulate train shard 1/2 failed (analysis seed 9, shard seed {shard_seed}, rows 0..25)" in log
    assert "worker node lost (attempt 2)" in log
