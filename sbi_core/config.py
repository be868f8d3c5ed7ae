"""Configuration: schema validation with defaults (:mod:`sbi_core.schema`), then semantic checks.

Everything a run needs is checked here, before any job starts: the schema
(types, ranges, required keys) and what a schema cannot see (simulator import
paths, prior bounds, files and their arrays, observation shapes). Errors are
:class:`~sbi_core.errors.ConfigError` naming the dotted key and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from sbi_core.errors import ArtifactError, ConfigError
from sbi_core.io import npz_array_shapes, read_array
from sbi_core.schema import check_schema
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import Task, build_task
from sbi_core.tasks.histfactory import build_histfactory

__all__ = ["load_config", "validate_config", "check_analysis", "simulator_output_shape"]


def load_config(path: str | Path) -> dict:
    """Reads a YAML config file, refusing anything that is not a mapping."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: could not read the config: {error}") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


def validate_config(config: dict, schema_path: str | Path, check_files: bool = True) -> dict:
    """Validates a config against the schema (filling defaults in place), then each analysis.

    Arguments:
        config: The parsed config; defaults are written into it.
        schema_path: The JSON schema (YAML) of the config.
        check_files: Whether to run the semantic checks of :func:`check_analysis`.

    Returns:
        The same config, with defaults filled in.
    """
    check_schema(config, schema_path)
    if check_files:
        for name, analysis in config["analyses"].items():
            check_analysis(analysis, f"analyses.{name}")
    return config


def check_analysis(analysis: dict, where: str) -> Task:
    """Checks what the schema cannot: task, simulator, files, shapes. Returns the task."""
    task = build_task(analysis, where)
    simulations = analysis["simulations"]
    x_shape = None
    for split in ("train", "test"):
        source = simulations[split]
        if isinstance(source, str):
            shape = _check_simulations_file(source, task, f"{where}.simulations.{split}")
            x_shape = x_shape or shape
        elif task.simulator is None:
            raise ConfigError(
                f"{where}.simulator: task 'custom' needs a simulator to run "
                f"{source} '{split}' simulations (or give simulations.{split} as a .npz file)"
            )
    if task.simulator is not None:
        x_shape = simulator_output_shape(task, analysis["seed"], f"{where}.simulator")
    _check_diagnostics(analysis, task, where)
    if task.name == "histfactory" and analysis["upper_limit"]["activate"]:
        _check_upper_limit(analysis, task, where)
    for i, observation in enumerate(analysis["observations"]):
        _check_observation(observation, task, x_shape, f"{where}.observations[{i}]")
    names = [o["name"] for o in analysis["observations"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}.observations: names must be unique, got {names}")
    return task


def _check_diagnostics(analysis: dict, task: Task, where: str) -> None:
    diagnostics, test = analysis["diagnostics"], analysis["simulations"]["test"]
    num_test = test if isinstance(test, int) else npz_array_shapes(test)["theta"][0]
    if diagnostics["num_simulations"] > num_test:
        raise ConfigError(
            f"{where}.diagnostics.num_simulations: {diagnostics['num_simulations']} exceeds "
            f"the {num_test} test simulations (simulations.test)"
        )
    references = diagnostics["tarp"]["references"]
    if references not in ("uniform", "prior"):
        expected = (diagnostics["num_simulations"], task.dim_theta)
        shape = _read(references, f"{where}.diagnostics.tarp.references").shape
        if shape != expected:
            raise ConfigError(
                f"{where}.diagnostics.tarp.references: {references} has shape {list(shape)}, "
                f"expected [num_simulations, d] = {list(expected)}"
            )


def _check_upper_limit(analysis: dict, task: Task, where: str) -> None:
    model, _ = build_histfactory(analysis["histfactory"], f"{where}.histfactory")
    poi = model.pyhf_model.config.poi_name
    if poi not in task.parameter_names:
        raise ConfigError(
            f"{where}.upper_limit: needs the POI {poi!r} among histfactory.parameters "
            f"({', '.join(task.parameter_names)}); add it, or set upper_limit.activate: false"
        )
    scan = analysis["upper_limit"].get("scan")
    if scan is not None and not scan[0] < scan[1]:
        raise ConfigError(f"{where}.upper_limit.scan: expected [low, high, n] with low < high, got {scan}")


def simulator_output_shape(task: Task, seed: int, where: str) -> tuple[int, ...]:
    """Runs the simulator on two prior draws to learn the shape of one x."""
    seed_everything(derive_seed(seed, "probe"))
    theta = task.prior.sample((2,))
    try:
        x = task.simulate(theta)
    except Exception as error:  # the user's code: report whatever it raised
        raise ConfigError(f"{where}: the simulator failed on prior draws: {error!r}") from error
    return tuple(x.shape[1:])


def _check_simulations_file(path: str, task: Task, where: str) -> tuple[int, ...]:
    try:
        shapes = npz_array_shapes(path)
    except ArtifactError as error:
        raise ConfigError(f"{where}: {error}") from error
    missing = {"theta", "x"} - shapes.keys()
    if missing:
        raise ConfigError(
            f"{where}: {path} lacks array(s) {sorted(missing)}; expected arrays 'theta' [N, d] "
            f"and 'x' [N, ...] (found {sorted(shapes)})"
        )
    theta_shape, x_shape = shapes["theta"], shapes["x"]
    if len(theta_shape) != 2 or theta_shape[1] != task.dim_theta:
        raise ConfigError(
            f"{where}: {path}: 'theta' has shape {theta_shape}, expected [N, {task.dim_theta}]"
        )
    if len(x_shape) < 2 or x_shape[0] != theta_shape[0] or theta_shape[0] == 0:
        raise ConfigError(
            f"{where}: {path}: 'x' has shape {x_shape}, expected [{theta_shape[0]}, ...] "
            "with one row per theta and at least one row"
        )
    return tuple(x_shape[1:])


def _check_observation(observation: dict, task: Task, x_shape: tuple | None, where: str) -> None:
    if "theta" in observation:
        if task.simulator is None:
            raise ConfigError(f"{where}.theta: simulating an observation needs a simulator")
        if len(observation["theta"]) != task.dim_theta:
            raise ConfigError(
                f"{where}.theta: has {len(observation['theta'])} values, expected "
                f"{task.dim_theta} ({', '.join(task.parameter_names)})"
            )
    elif "from_workspace" in observation:
        if task.observed_data is None:
            raise ConfigError(f"{where}.from_workspace: only a histfactory task has workspace data")
    else:
        x_o = _read(observation["file"], f"{where}.file")
        if x_shape is not None and tuple(x_o.shape) != tuple(x_shape):
            raise ConfigError(
                f"{where}.file: {observation['file']} holds an array of shape {tuple(x_o.shape)}, "
                f"expected the simulator's output shape {tuple(x_shape)}"
            )
    if "reference_samples" in observation:
        samples = _read(observation["reference_samples"], f"{where}.reference_samples")
        if samples.ndim != 2 or samples.shape[1] != task.dim_theta:
            raise ConfigError(
                f"{where}.reference_samples: shape {samples.shape}, expected [n, {task.dim_theta}]"
            )


def _read(path: str, where: str):
    try:
        return read_array(path)
    except ArtifactError as error:
        raise ConfigError(f"{where}: {error}") from error
