"""Artifact formats: simulations (.npz), arrays, estimators (.pt), JSON; all written atomically.

Every writer goes through :func:`atomic_path`: the file is written under a
temporary name beside its target and renamed, so a killed job never leaves a
half-written artifact. Estimators are a state dict plus JSON hyperparameters and
load with ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import pickle
import platform
import shlex
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sbi_core.errors import ArtifactError

if TYPE_CHECKING:  # torch loads where a .pt is read or written: light steps (merges, the report) never need it
    import torch

__all__ = [
    "atomic_path",
    "write_json",
    "read_json",
    "save_arrays",
    "read_provenance",
    "save_simulations",
    "load_simulations",
    "npz_array_headers",
    "npz_array_shapes",
    "read_array",
    "read_observation",
    "save_state",
    "load_state",
    "write_inference_data",
    "provenance",
    "config_hash",
]

_PACKAGES = ("sbi_core", "torch", "sbi", "zuko", "numpy", "scipy", "arviz", "snakemake")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it to `path` on success only.

    A job killed mid-write (SIGKILL skips the clean-up) leaves only a hidden
    temporary, never a truncated `path`; the next write of `path` removes it. A full
    disk (or quota) is an :class:`~sbi_core.errors.ArtifactError` naming `path`.
    The file gets the permissions of the user's umask, like any file they write
    (``mkstemp`` makes it private, which would hide results from a lab's colleagues).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ArtifactError(
            f"{path}: could not be written: {error.strerror} in {path.parent}; nothing was written "
            "(free some space, or point the results elsewhere, and rerun)"
        ) from error
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: Any) -> None:
    """Writes indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    """Reads JSON, naming the file if it is malformed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: could not read JSON: {error}") from error


def save_arrays(path: str | Path, arrays: dict[str, Any], provenance: dict | None = None) -> None:
    """Saves arrays as .npz; `provenance` goes in as the JSON string array ``provenance``.

    Plain numpy arrays only: the file loads with ``np.load`` (``allow_pickle=False``).
    """
    entries = {key: np.asarray(value) for key, value in arrays.items()}
    if provenance is not None:
        entries["provenance"] = np.array(json.dumps(provenance))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **entries)


def read_provenance(path: str | Path) -> dict | None:
    """The provenance stored in a .npz or .pt artifact (None if it has none)."""
    path = Path(path)
    if path.suffix == ".pt":
        import torch

        record = torch.load(path, map_location="cpu", weights_only=True).get("provenance")
    else:
        with np.load(path) as data:
            record = str(data["provenance"]) if "provenance" in data.files else None
    return json.loads(record) if record is not None else None


def save_simulations(path: str | Path, theta: np.ndarray, x: np.ndarray, provenance: dict | None = None) -> None:
    """Saves simulations as float32 arrays `theta` [N, d] and `x` [N, ...]."""
    save_arrays(path, {"theta": np.asarray(theta, np.float32), "x": np.asarray(x, np.float32)}, provenance)


def load_simulations(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Loads `theta` and `x` from a .npz file, refusing files without them."""
    try:
        with np.load(path) as data:
            if "theta" not in data or "x" not in data:
                raise ArtifactError(
                    f"{path}: expected arrays 'theta' and 'x', found {sorted(data.files)}"
                )
            theta, x = (_real(data[name], path, name) for name in ("theta", "x"))
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, ArtifactError):
            raise
        raise ArtifactError(f"{path}: not a readable .npz file: {error}") from error
    if theta.ndim != 2 or len(theta) != len(x):
        raise ArtifactError(f"{path}: theta {theta.shape} and x {x.shape} do not pair up as [N, d], [N, ...]")
    return theta, x


def npz_array_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Reads the shapes of the arrays in a .npz file from their headers, without loading them."""
    return {name: shape for name, (shape, _) in npz_array_headers(path).items()}


def npz_array_headers(path: str | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Reads the shape and dtype of each array in a .npz file from its header, without loading it."""
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = {}
            for name in archive.namelist():
                with archive.open(name) as f:
                    major, _ = np.lib.format.read_magic(f)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(f)
                shapes[name.removesuffix(".npy")] = (tuple(shape), dtype)
            return shapes
    except FileNotFoundError as error:
        raise ArtifactError(f"{path}: file not found") from error
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ArtifactError(f"{path}: not a readable .npz file: {error}") from error


def read_array(path: str | Path) -> np.ndarray:
    """Reads a float32 array from .npy or .csv (comma-separated, `#` comments)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".csv":
            array = np.loadtxt(path, delimiter=",", ndmin=1)
        else:
            raise ArtifactError(f"{path}: expected a .npy or .csv file")
    except ValueError as error:
        raise ArtifactError(f"{path}: could not read numbers: {error}") from error
    return _real(array, path, "the array")


def _real(array: np.ndarray, path: str | Path, name: str) -> np.ndarray:
    """`array` as float32; refuses complex (or other non-real) values rather than drop a part of them."""
    if np.asarray(array).dtype.kind not in "biuf":
        raise ArtifactError(f"{path}: {name} holds {np.asarray(array).dtype} values, expected real numbers")
    return np.asarray(array, dtype=np.float32)


def read_observation(path: str | Path, x_shape: tuple[int, ...]) -> np.ndarray:
    """Reads one observed x of the simulator's shape `x_shape` from .npy or .csv.

    sbi's and sbibm's ``[1, *x_shape]`` for a single observation is accepted (the leading
    1 dropped); NaN and inf are refused: no estimator has seen them.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     np.save(f"{folder}/x_o.npy", np.zeros((1, 3)))
        ...     read_observation(f"{folder}/x_o.npy", (3,)).shape
        (3,)
    """
    x = read_array(path)
    x_shape = tuple(x_shape)
    if x.shape == (1, *x_shape):
        x = x[0]
    if x.shape != x_shape:
        raise ArtifactError(
            f"{path} holds an array of shape {x.shape}, expected the simulator's output shape {x_shape} "
            f"(or [1, {', '.join(map(str, x_shape))}] for one observation)"
        )
    if not np.isfinite(x).all():
        raise ArtifactError(f"{path}: {int((~np.isfinite(x)).sum())} of {x.size} values are NaN or inf; expected finite numbers")
    return x


def save_state(
    path: str | Path, state_dict: dict[str, torch.Tensor], hyperparameters: dict, provenance: dict | None = None
) -> None:
    """Saves a network as its state dict plus JSON hyperparameters and provenance (no pickled objects)."""
    payload = {"state_dict": state_dict, "hyperparameters": json.dumps(hyperparameters)}
    if provenance is not None:
        payload["provenance"] = json.dumps(provenance)
    import torch

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a Python file: a failed write is an OSError, not torch's "unexpected pos"
            torch.save(payload, f)


_ESTIMATOR_FILE = "a state dict and JSON hyperparameters, as sbi_core's train step writes estimators/<method>.pt"


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Loads what :func:`save_state` wrote, with ``weights_only=True``.

    Raises:
        ArtifactError: Naming the file and what it is not. A file of pickled objects is refused
            unread, and torch's suggestion to load it with ``weights_only=False`` (running any
            code it holds) is not passed on.
    """
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ArtifactError(
            f"{path}: not an sbi_core estimator file ({_ESTIMATOR_FILE}): it holds pickled objects other "
            "than tensors and plain data, so it was not written by sbi_core; it is refused unread"
        ) from None  # torch's message invites weights_only=False: arbitrary code from an untrusted file
    except (OSError, RuntimeError) as error:
        raise ArtifactError(f"{path}: not an sbi_core estimator file ({_ESTIMATOR_FILE}): {error}") from error
    try:
        state_dict, hyperparameters = payload["state_dict"], json.loads(payload["hyperparameters"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: not an sbi_core estimator file ({_ESTIMATOR_FILE}): {error!r}") from error
    if not isinstance(state_dict, dict) or not isinstance(hyperparameters, dict):
        raise ArtifactError(
            f"{path}: not an sbi_core estimator file ({_ESTIMATOR_FILE}): its state dict is a "
            f"{type(state_dict).__name__} and its hyperparameters a {type(hyperparameters).__name__}, "
            "expected a mapping each"
        )
    return state_dict, hyperparameters


def config_hash(config: dict) -> str:
    """A short, stable hash of a config (sorted-key JSON)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def provenance(settings: dict, seed: int | None) -> dict:
    """What produced an artifact: the hash of the settings it was made from (a step's
    config keys), the analysis seed, package versions, git commit, command."""
    versions = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "config_hash": config_hash(settings),
        "seed": seed,
        "packages": versions,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "command": os.environ.get("SBI_CORE_COMMAND") or shlex.join(sys.argv),  # set by the Snakefile
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def write_inference_data(
    path: str | Path,
    posterior: dict[str, np.ndarray],
    observed_data: dict[str, np.ndarray] | None = None,
    attrs: dict[str, str] | None = None,
    dims: dict[str, list[str]] | None = None,
) -> None:
    """Writes posterior draws as an ArviZ InferenceData netCDF file, atomically, without ArviZ.

    The layout is ArviZ's (``arviz.from_netcdf`` reads it): a ``posterior`` group whose
    variables are ``[chain, draw, ...]`` and an ``observed_data`` group, each dimension
    with an integer coordinate. Importing ArviZ costs seconds per job; h5netcdf, which
    ArviZ writes through, a fraction of one.

    Arguments:
        path: The .nc file.
        posterior: Variable name -> draws ``[chain, draw, *shape]``.
        observed_data: Variable name -> array.
        attrs: Attributes of both groups (strings), e.g. the method and provenance.
        dims: Names of a variable's dimensions after ``chain, draw`` (default ``<name>_dim_<i>``).
    """
    import h5netcdf  # here, not at import: most steps never write samples

    groups = {"posterior": (posterior, 2), "observed_data": (observed_data or {}, 0)}
    with atomic_path(path) as tmp, h5netcdf.File(tmp, "w") as file:
        for group_name, (variables, leading) in groups.items():
            if group_name == "observed_data" and not variables:
                continue
            group = file.create_group(group_name)
            group.attrs.update({"created_at": _utc_now(), "inference_library": "sbi_core", **(attrs or {})})
            for name, values in variables.items():
                values = np.asarray(values)
                trailing = (dims or {}).get(name) or [f"{name}_dim_{i}" for i in range(values.ndim - leading)]
                names = (["chain", "draw"] if leading else []) + list(trailing)
                if len(names) != values.ndim:
                    raise ValueError(f"{name}: expected {len(names)} dimensions {names}, got shape {values.shape}")
                for dimension, size in zip(names, values.shape):
                    if dimension not in group.dimensions:
                        group.dimensions[dimension] = size
                        group.create_variable(dimension, (dimension,), data=np.arange(size, dtype=np.int64))
                group.create_variable(name, tuple(names), data=values)


def _utc_now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat()

