"""Sharded, seeded simulation; invalid rows dropped and counted; too many refused."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sbi_core.errors import SimulationError
from sbi_core.io import save_simulations
from sbi_core.seeding import derive_seed
from sbi_core.simulation import collect_simulations, shard_sizes, simulate_shard
from sbi_core.tasks import BUILTIN_TASKS, build_task
from tests.conftest import validated


def test_shard_sizes_add_up():
    assert shard_sizes(10, 3) == [4, 3, 3]
    assert sum(shard_sizes(10_001, 7)) == 10_001


def test_derive_seed_streams_differ_and_repeat():
    assert derive_seed(1, "simulate", "train", 0) == derive_seed(1, "simulate", "train", 0)
    seeds = {derive_seed(s, "simulate", split, i) for s in (1, 2) for split in ("train", "test") for i in range(3)}
    assert len(seeds) == 12


def test_shards_are_seeded_and_distinct():
    task = BUILTIN_TASKS["gaussian_linear"]()
    a0 = simulate_shard(task, 100, 2, 0, seed=5, split="train")
    a0_again = simulate_shard(task, 100, 2, 0, seed=5, split="train")
    a1 = simulate_shard(task, 100, 2, 1, seed=5, split="train")
    b0 = simulate_shard(task, 100, 2, 0, seed=6, split="train")
    np.testing.assert_array_equal(a0[0], a0_again[0])
    np.testing.assert_array_equal(a0[1], a0_again[1])
    assert a0[0].shape == (50, 10) and a0[1].shape == (50, 10)
    assert not np.allclose(a0[0], a1[0]) and not np.allclose(a0[0], b0[0])


def _custom(simulator, max_invalid=0.1):
    return validated(
        {
            "task": "custom",
            "simulator": simulator,
            "prior": {"type": "box_uniform", "low": [-1, -1], "high": [1, 1]},
            "simulations": {"train": 2000, "test": 10, "max_invalid_fraction": max_invalid},
            "methods": ["npe"],
            "observations": [{"name": "o", "theta": [0.0, 0.0]}],
            "diagnostics": {"num_simulations": 10},
        }
    )


def test_nan_rows_are_dropped_and_counted(user_simulator, tmp_path):
    task = build_task(_custom(user_simulator), "analyses.demo")
    paths = []
    for shard in range(2):
        theta, x = simulate_shard(task, 2000, 2, shard, seed=0, split="train")
        paths.append(str(tmp_path / f"shard_{shard}.npz"))
        save_simulations(paths[-1], theta, x)
    theta, x, counts = collect_simulations(paths, 0.2, "analyses.demo.simulations.train")
    expected_invalid = counts["num_simulated"] * 0.1  # theta_1 > 0.8 under U(-1, 1)
    assert counts["num_simulated"] == 2000
    assert abs(counts["num_invalid"] - expected_invalid) < 4 * np.sqrt(expected_invalid)
    assert counts["num_valid"] == len(x) == len(theta) == 2000 - counts["num_invalid"]
    assert np.isfinite(x).all() and (theta[:, 0] <= 0.8).all()


def test_too_many_invalid_rows_fail_with_a_clear_message(user_simulator, tmp_path):
    task = build_task(_custom(user_simulator), "analyses.demo")
    theta, x = simulate_shard(task, 1000, 1, 0, seed=0, split="train")
    save_simulations(tmp_path / "s.npz", theta, x)
    with pytest.raises(SimulationError, match=r"analyses\.demo\.simulations\.train: \d+ of 1000 simulations .* above max_invalid_fraction=0\.05"):
        collect_simulations([str(tmp_path / "s.npz")], 0.05, "analyses.demo.simulations.train")


def test_failing_simulator_names_shard_and_seed(user_simulator):
    analysis = _custom(user_simulator)
    analysis["simulator"] = "usersim:broken"
    task = build_task(analysis, "analyses.demo")
    with pytest.raises(SimulationError, match=r"simulate train shard 2/3 failed \(analysis seed 7, shard seed \d+.*detector offline"):
        simulate_shard(task, 30, 3, 1, seed=7, split="train")


def test_a_simulator_over_its_time_limit_is_named_with_shard_and_seed(tmp_path, monkeypatch):
    (tmp_path / "slow.py").write_text("import time\n\ndef simulate(theta):\n    time.sleep(3600)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = build_task({"task": "custom", "simulator": "slow:simulate",
                       "prior": {"type": "box_uniform", "low": [-1, -1], "high": [1, 1]}}, "analyses.demo")
    shard_seed = derive_seed(7, "simulate", "test", 1)
    start = time.monotonic()
    with pytest.raises(SimulationError, match=rf"simulate test shard 2/2 failed \(analysis seed 7, shard seed {shard_seed}, "
                                              r"rows 0\.\.14\): .*did not return within 0\.3 s on 15 rows \(simulations\.time_limit\)"):
        simulate_shard(task, 30, 2, 1, seed=7, split="test", time_limit=0.3)
    assert time.monotonic() - start < 5
    assert simulate_shard(BUILTIN_TASKS["two_moons"](), 4, 1, 0, 0, "test", time_limit=60)[1].shape == (4, 2)
