"""Configuration: schema validation with defaults (:mod:`sbi_core.schema`), then semantic checks.

Everything a run needs is checked here, before any job starts: the schema
(types, ranges, required keys) and what a schema cannot see (simulator import
paths, prior bounds, files and their arrays, observation shapes). Errors are
:class:`~sbi_core.errors.ConfigError` naming the dotted key and what was expected.
"""

from __future__ import annotations

import math
from pathlib import Path

from sbi_core.errors import ArtifactError, ConfigError
from sbi_core.estimators.registry import method_spec
from sbi_core.io import npz_array_headers, npz_array_shapes, read_array, read_observation
from sbi_core.schema import check_schema, is_design_only, read_yaml
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import Task, build_task

__all__ = ["load_config", "validate_config", "check_devices", "check_analysis", "simulator_output_shape"]


def load_config(path: str | Path) -> dict:
    """Reads a YAML config file (:func:`~sbi_core.schema.read_yaml`), refusing anything that is not a mapping."""
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


def validate_config(
    config: dict, schema_path: str | Path, check_files: bool = True, check_device: bool = True
) -> dict:
    """Validates a config against the schema (filling defaults in place), then each analysis.

    Arguments:
        config: The parsed config; defaults are written into it.
        schema_path: The JSON schema (YAML) of the config.
        check_files: Whether to run the semantic checks of :func:`check_analysis`.
        check_device: With `check_files`, whether to require this machine to have each analysis's
            ``device`` (:func:`check_devices`); not where the jobs run elsewhere (a cluster's GPU nodes).

    Returns:
        The same config, with defaults filled in.
    """
    check_schema(config, schema_path)
    if check_files:
        if check_device:
            check_devices(config)
        for name, analysis in config["analyses"].items():
            check_analysis(analysis, f"analyses.{name}")
    return config


def check_devices(config: dict) -> None:
    """Refuses an analysis's ``device: cuda`` on a machine without a GPU, naming the key."""
    from sbi_core.estimators.device import require_device  # torch's CUDA query: only here

    for name, analysis in config["analyses"].items():
        require_device(analysis["device"], f"analyses.{name}.device")


def check_analysis(analysis: dict, where: str) -> Task | None:
    """Checks what the schema cannot: task, simulator, files, shapes. Returns the task (None for a
    design-only analysis, whose design block is all there is to check)."""
    if is_design_only(analysis):
        if analysis["unfolding"]["activate"]:
            raise ConfigError(f"{where}.unfolding: unfolding needs an analysis that infers (task, simulations, "
                              "methods, observations); this one only designs")
        _check_design(analysis, f"{where}.design")
        return None
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
        elif simulations["shards"] > source:
            raise ConfigError(
                f"{where}.simulations.shards: {simulations['shards']} shards for {source} {split} "
                f"simulations (simulations.{split}) would leave shards empty; expected at most {source}"
            )
    if task.simulator is not None:
        x_shape = simulator_output_shape(task, analysis["seed"], f"{where}.simulator", simulations["time_limit"])
    _check_diagnostics(analysis, task, where)
    _check_atoms(analysis, where)
    _check_sampling(analysis["sampling"], f"{where}.sampling")
    if task.name == "histfactory" and analysis["upper_limit"]["activate"]:
        _check_upper_limit(analysis, task, where)
    for i, observation in enumerate(analysis["observations"]):
        _check_observation(observation, task, x_shape, f"{where}.observations[{i}]")
    names = [o["name"] for o in analysis["observations"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}.observations: names must be unique, got {names}")
    if analysis["unfolding"]["activate"]:
        _check_unfolding(analysis, task, x_shape, f"{where}.unfolding")
    if analysis["design"]["activate"]:
        _check_design(analysis, f"{where}.design")
    return task


def _check_design(analysis: dict, where: str) -> None:
    """The design box and methods (named keys), and that the estimators' training keys are known."""
    from sbi_core.design.tasks import LIKELIHOOD_METHODS, build_design_task

    design = analysis["design"]
    build_design_task(design, where)
    from sbi_core.estimators.registry import REGISTRY

    known = {key for spec in REGISTRY.values() for key in spec.training_keys}
    unknown = sorted(set(design["training"]) - known)
    if unknown:
        raise ConfigError(f"{where}.training.{unknown[0]}: not a training key; expected one of {', '.join(sorted(known))}")
    groups = design["num_contrastive"]
    if any(m not in LIKELIHOOD_METHODS for m in design["methods"]) and design["num_outer"] < groups:
        raise ConfigError(f"{where}.num_outer: {design['num_outer']} joint draws cannot fill one contrastive "
                          f"group of num_contrastive = {groups}")


def _check_unfolding(analysis: dict, task: Task, x_shape: tuple | None, where: str) -> None:
    """The population (file shape, or a source inside the prior's support), the methods, IBU's binning."""
    import numpy as np

    from sbi_core.unfolding.source import support_of
    from sbi_core.unfolding.sources import source_from_config

    unfolding = analysis["unfolding"]
    unknown = sorted(set(unfolding.get("methods", [])) - set(analysis["methods"]))
    if unknown:
        raise ConfigError(f"{where}.methods: {unknown} are not among the analysis's methods {analysis['methods']}")
    try:
        support_of(task.prior)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from error
    population = unfolding["population"] if "population" in unfolding else None
    if population is None:
        raise ConfigError(f"{where}.population: required when unfolding is active ({{file: x.npy}} or {{source: ..., size: n}})")
    if "file" in population:
        x = _read(population["file"], f"{where}.population.file")
        if x_shape is not None and (x.ndim < 2 or x[0].size != int(np.prod(x_shape))):
            raise ConfigError(
                f"{where}.population.file: {population['file']} holds an array of shape {list(x.shape)}, "
                f"expected [n, {', '.join(map(str, x_shape))}] (n observations of the simulator's shape)"
            )
        if len(x) < 10 or not np.isfinite(x).all():
            raise ConfigError(f"{where}.population.file: {population['file']} needs at least 10 rows, all finite")
    else:
        if task.simulator is None:
            raise ConfigError(f"{where}.population.source: simulating a population needs a simulator")
        source_from_config(population["source"], task.prior, f"{where}.population.source")
    ibu = unfolding["ibu"]
    if ibu["activate"] and x_shape is not None:
        features = int(np.prod(x_shape))
        observables = ibu.get("observables")
        if observables is not None and (len(observables) != task.dim_theta or max(observables) >= features):
            raise ConfigError(
                f"{where}.ibu.observables: expected {task.dim_theta} feature indices (one per parameter) "
                f"below {features} (x has {features} features), got {observables}"
            )
        _check_cause_bins(analysis, task, unfolding["bins"], f"{where}.bins")


def _check_cause_bins(analysis: dict, task: Task, bins: int, where: str) -> None:
    """IBU needs simulated events in every cause bin: refuse bins the training prior leaves (nearly) empty."""
    import numpy as np
    import torch

    from sbi_core.unfolding.spectra import parameter_edges

    train = analysis["simulations"]["train"]
    num_train = train if isinstance(train, int) else npz_array_shapes(train)["theta"][0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(analysis["seed"], "cause_bins"))
        theta = task.prior.sample((num_train,)).numpy()
    for j, edges in enumerate(parameter_edges(task.prior, bins)):
        counts, _ = np.histogram(theta[:, j], bins=edges)
        if counts.min() < 1:
            raise ConfigError(
                f"{where}: {bins} bins leave cause bin {int(counts.argmin())} of {task.parameter_names[j]} "
                f"without training simulations ({num_train} drawn from the prior); IBU needs every cause "
                "bin filled: use fewer bins or more training simulations"
            )


def _check_atoms(analysis: dict, where: str) -> None:
    """A contrastive method (NRE-B, NRE-C) draws `num_atoms` atoms per observation from each batch
    and from the validation split: refuse a budget too small for them before training starts (NRE-B's
    default of 50 atoms needs 500 simulations at the default validation fraction)."""
    training, train = analysis["training"], analysis["simulations"]["train"]
    num_train = train if isinstance(train, int) else npz_array_shapes(train)["theta"][0]
    num_validation = max(1, math.ceil(training["validation_fraction"] * num_train))
    for method in analysis["methods"]:
        spec = method_spec(method)
        if "num_atoms" not in spec.training_keys:
            continue
        atoms = training.get("num_atoms", dict(spec.training_defaults).get("num_atoms"))
        if atoms > min(training["batch_size"], num_validation):
            raise ConfigError(
                f"{where}.training.num_atoms: {method} takes {atoms} atoms per observation"
                f"{'' if 'num_atoms' in training else ' (its default)'} from each batch of "
                f"{training['batch_size']} (training.batch_size) and from the {num_validation} validation "
                f"simulations ({training['validation_fraction']} of {num_train}); expected at most "
                f"{min(training['batch_size'], num_validation)}: set fewer atoms or simulate more"
            )


def _check_sampling(sampling: dict, where: str) -> None:
    first = sampling.get("num_proposals", max(10_000, 10 * sampling["num_samples"]))
    if sampling.get("max_proposals", first) < first:
        raise ConfigError(f"{where}.max_proposals: {sampling['max_proposals']} is fewer than the first "
                          f"{first} proposals (num_proposals); expected at least {first}")


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
    from sbi_core.tasks.histfactory import build_histfactory  # pyhf: only for this task

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


def simulator_output_shape(task: Task, seed: int, where: str, time_limit: float | None = None) -> tuple[int, ...]:
    """Runs the simulator on two prior draws, then on one, to learn the shape of one x.

    Arguments:
        task: The task; it must have a simulator.
        seed: The analysis seed (the probe's stream is ``(probe,)``).
        where: The config key of the simulator, for messages.
        time_limit: Seconds each call may take (``simulations.time_limit``).

    Raises:
        ConfigError: The simulator failed, overran its time limit, or returned an x whose
            shape depends on the number of rows (the steps call it on batches of any size).
    """
    seed_everything(derive_seed(seed, "probe"))
    theta = task.prior.sample((3,))
    try:
        shapes = [tuple(task.simulate(rows, time_limit).shape[1:]) for rows in (theta[:2], theta[2:])]
    except Exception as error:  # the user's code: report whatever it raised
        raise ConfigError(f"{where}: the simulator failed on prior draws: {error!r}") from error
    if shapes[0] != shapes[1]:
        raise ConfigError(
            f"{where}: the shape of one x depends on the batch size: {list(shapes[0])} per row for 2 rows, "
            f"{list(shapes[1])} for 1 row; expected the same shape for any number of rows"
        )
    return shapes[0]


def _check_simulations_file(path: str, task: Task, where: str) -> tuple[int, ...]:
    try:
        headers = npz_array_headers(path)
    except ArtifactError as error:
        raise ConfigError(f"{where}: {error}") from error
    missing = {"theta", "x"} - headers.keys()
    if missing:
        raise ConfigError(
            f"{where}: {path} lacks array(s) {sorted(missing)}; expected arrays 'theta' [N, d] "
            f"and 'x' [N, ...] (found {sorted(headers)})"
        )
    for name in ("theta", "x"):
        dtype = headers[name][1]
        if dtype.kind not in "biuf":
            raise ConfigError(f"{where}: {path}: {name!r} holds {dtype} values, expected real numbers")
    theta_shape, x_shape = headers["theta"][0], headers["x"][0]
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
        _check_true_parameters(observation["theta"], task, f"{where}.theta")
    elif "from_workspace" in observation:
        if task.observed_data is None:
            raise ConfigError(f"{where}.from_workspace: only a histfactory task has workspace data")
    else:
        try:
            read_observation(observation["file"], x_shape)
        except ArtifactError as error:
            raise ConfigError(f"{where}.file: {error}") from error
    if "reference_samples" in observation:
        samples = _read(observation["reference_samples"], f"{where}.reference_samples")
        if samples.ndim != 2 or samples.shape[1] != task.dim_theta:
            raise ConfigError(
                f"{where}.reference_samples: shape {samples.shape}, expected [n, {task.dim_theta}]"
            )


def _check_true_parameters(theta: list[float], task: Task, where: str) -> None:
    """True parameters are finite and inside the prior's support: the posterior is zero outside it,
    so no method could recover them (and a simulator fed inf gives an x no estimator has seen)."""
    import torch

    from sbi_core.sampling.support import prior_log_prob

    if len(theta) != task.dim_theta:
        raise ConfigError(
            f"{where}: has {len(theta)} values, expected {task.dim_theta} ({', '.join(task.parameter_names)})"
        )
    if not all(math.isfinite(value) for value in theta):
        raise ConfigError(f"{where}: {theta} has NaN or infinite values; expected finite numbers")
    if not prior_log_prob(task.prior, torch.tensor([theta], dtype=torch.float32)).isfinite().all():
        raise ConfigError(
            f"{where}: {theta} lies outside the prior's support (zero prior density); expected a point "
            "the prior can draw, or the posterior there is zero for every method"
        )


def _read(path: str, where: str):
    try:
        return read_array(path)
    except ArtifactError as error:
        raise ConfigError(f"{where}: {error}") from error
