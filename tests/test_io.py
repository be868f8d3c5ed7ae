"""Artifact formats: atomic writes, npz headers, arrays from .npy/.csv, estimator files."""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch

import sbi_core.io
from sbi_core.errors import ArtifactError
from sbi_core.io import (
    atomic_path, load_simulations, load_state, npz_array_shapes, read_array, read_observation, save_arrays, save_state,
    write_json,
)


def test_interrupted_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out" / "artifact.json"
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("killed")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_writer_killed_mid_write_leaves_no_artifact_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "estimator.pt"
    writer = (
        "import os, signal, sys\n"
        "from sbi_core.io import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'half an estimator')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", writer, str(target)])
    assert killed.returncode == -9
    assert not target.exists()
    (leftover,) = tmp_path.iterdir()  # SIGKILL skips the clean-up: a hidden temporary stays
    assert leftover.name.startswith(".estimator.") and leftover.name.endswith(".tmp.pt")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["estimator.pt"] and target.read_bytes() == b"whole"


def test_atomic_write_replaces_the_target(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_npz_shapes_without_loading(tmp_path):
    np.savez(tmp_path / "s.npz", theta=np.zeros((7, 2)), x=np.zeros((7, 3, 4), dtype=np.float32))
    assert npz_array_shapes(tmp_path / "s.npz") == {"theta": (7, 2), "x": (7, 3, 4)}
    with pytest.raises(ArtifactError, match="missing.npz: file not found"):
        npz_array_shapes(tmp_path / "missing.npz")


def test_load_simulations_refuses_unpaired_arrays(tmp_path):
    np.savez(tmp_path / "s.npz", theta=np.zeros((7, 2)), x=np.zeros((6, 3)))
    with pytest.raises(ArtifactError, match=r"s\.npz: theta \(7, 2\) and x \(6, 3\) do not pair up"):
        load_simulations(tmp_path / "s.npz")


def test_read_array_from_npy_and_csv(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3.0))
    (tmp_path / "b.csv").write_text("# x_o\n1.5,2.5,3.5\n")
    np.testing.assert_array_equal(read_array(tmp_path / "a.npy"), [0, 1, 2])
    np.testing.assert_array_equal(read_array(tmp_path / "b.csv"), [1.5, 2.5, 3.5])
    (tmp_path / "c.csv").write_text("1,two\n")
    with pytest.raises(ArtifactError, match=r"c\.csv: could not read numbers"):
        read_array(tmp_path / "c.csv")


def test_state_round_trip_is_weights_only(tmp_path):
    state = {"w": torch.arange(4.0)}
    save_state(tmp_path / "e.pt", state, {"method": "npe", "hidden_features": 8})
    raw = torch.load(tmp_path / "e.pt", weights_only=True)
    assert isinstance(raw["hyperparameters"], str)
    loaded, hyper = load_state(tmp_path / "e.pt")
    torch.testing.assert_close(loaded["w"], state["w"])
    assert hyper == {"method": "npe", "hidden_features": 8}


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_artifacts_get_the_permissions_of_the_users_umask(tmp_path, umask):
    """A colleague on the same cluster reads results as the umask allows (mkstemp's 0600 must not leak)."""
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "summary.json", {"a": 1})
        save_arrays(tmp_path / "ranks.npz", {"ranks": np.arange(3)})
        save_state(tmp_path / "npe.pt", {"w": torch.zeros(2)}, {"method": "npe"})
    finally:
        os.umask(previous)
    for name in ("summary.json", "ranks.npz", "npe.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


# ---------------------------------------------------------------------- hostile input (issue 15)


def test_complex_simulations_are_refused_not_truncated(tmp_path):
    np.savez(tmp_path / "s.npz", theta=np.zeros((4, 2)), x=np.ones((4, 3)) * (1 + 2j))
    with pytest.raises(ArtifactError, match=r"s\.npz: x holds complex128 values, expected real numbers"):
        load_simulations(tmp_path / "s.npz")
    np.save(tmp_path / "x_o.npy", np.ones(3) * 1j)
    with pytest.raises(ArtifactError, match=r"x_o\.npy: the array holds complex128 values"):
        read_array(tmp_path / "x_o.npy")


def test_read_observation_squeezes_one_leading_row_and_refuses_nan(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(3.0)[None])
    np.testing.assert_array_equal(read_observation(tmp_path / "one.npy", (3,)), [0, 1, 2])
    np.testing.assert_array_equal(read_observation(tmp_path / "one.npy", (1, 3)), [[0, 1, 2]])  # x is [1, 3] itself
    np.save(tmp_path / "inf.npy", np.array([0.0, np.inf, np.nan]))
    with pytest.raises(ArtifactError, match=r"inf\.npy: 2 of 3 values are NaN or inf"):
        read_observation(tmp_path / "inf.npy", (3,))


class _FullDisk(io.FileIO):
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_named_and_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sbi_core.io, "open", lambda path, mode: _FullDisk(path, mode), raising=False)
    with pytest.raises(ArtifactError, match=r"npe\.pt: could not be written: No space left on device in .*nothing was written"):
        save_state(tmp_path / "npe.pt", {"w": torch.zeros(1000)}, {"method": "npe"})
    assert list(tmp_path.iterdir()) == []


def test_a_pickled_object_is_refused_unread_without_inviting_weights_only_false(tmp_path):
    marker = tmp_path / "payload-ran"
    torch.save({"state_dict": {}, "hyperparameters": "{}", "payload": _Payload(str(marker))}, tmp_path / "npe.pt")
    with pytest.raises(ArtifactError) as error:
        load_state(tmp_path / "npe.pt")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'npe.pt'}: not an sbi_core estimator file (a state dict and JSON")
    assert "not written by sbi_core" in message and "refused unread" in message
    assert "weights_only" not in message and error.value.__suppress_context__
    assert not marker.exists()


class _Payload:
    """Unpickling it would create a file: the proof that it ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize(("hyperparameters", "kind"), [("[1, 2]", "list"), ('"npe"', "str")])
def test_hyperparameters_that_are_not_a_mapping(tmp_path, hyperparameters, kind):
    torch.save({"state_dict": {}, "hyperparameters": hyperparameters}, tmp_path / "e.pt")
    with pytest.raises(ArtifactError, match=rf"e\.pt: not an sbi_core estimator file .* hyperparameters a {kind}, expected a mapping"):
        load_state(tmp_path / "e.pt")


def test_inference_data_written_without_arviz_reads_with_arviz(tmp_path):
    import arviz as az

    from sbi_core.pipeline.common import read_posterior_samples

    rng = np.random.default_rng(0)
    posterior = {"mu": rng.normal(size=(1, 50)).astype(np.float32), "alpha": rng.normal(size=(1, 50))}
    path = tmp_path / "o.nc"
    sbi_core.io.write_inference_data(path, posterior, {"x": np.arange(3.0)}, {"method": "nre", "provenance": "{}"})
    idata = az.from_netcdf(path)
    assert list(idata.posterior.data_vars) == ["mu", "alpha"]
    assert np.array_equal(idata.posterior["mu"].values, posterior["mu"])
    assert idata.posterior.attrs["method"] == idata.observed_data.attrs["method"] == "nre"
    assert np.array_equal(idata.observed_data["x"].values, np.arange(3.0))
    samples, names = read_posterior_samples(str(path))
    assert names == ["mu", "alpha"] and np.allclose(samples[:, 1], posterior["alpha"][0])
    # Named trailing dimensions (empirical-Bayes posteriors: one per observation).
    per_event = rng.normal(size=(1, 20, 4))
    sbi_core.io.write_inference_data(tmp_path / "eb.nc", {"p": per_event}, dims={"p": ["observation"]})
    assert az.from_netcdf(tmp_path / "eb.nc").posterior["p"].dims == ("chain", "draw", "observation")
    with pytest.raises(ValueError, match=r"p: expected 3 dimensions"):
        sbi_core.io.write_inference_data(tmp_path / "bad.nc", {"p": per_event[0]}, dims={"p": ["observation"]})
    assert not (tmp_path / "bad.nc").exists()
