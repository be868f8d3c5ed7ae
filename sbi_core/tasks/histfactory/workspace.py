"""Reading a pyhf JSON workspace, refusing a malformed one with the config key and the file named."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyhf

from sbi_core.errors import ConfigError

__all__ = ["load_workspace", "measurement_name", "PYHF_ERRORS"]

# What pyhf raises for a workspace or model it cannot build.
PYHF_ERRORS: tuple[type[Exception], ...] = (
    pyhf.exceptions.InvalidSpecification,
    pyhf.exceptions.InvalidMeasurement,
    pyhf.exceptions.InvalidModel,
    pyhf.exceptions.InvalidModifier,
    pyhf.exceptions.InvalidNameReuse,
    pyhf.exceptions.InvalidInterpCode,
    pyhf.exceptions.Unsupported,
)


def load_workspace(path: Path, where: str) -> pyhf.Workspace:
    """Reads and validates a pyhf JSON workspace against pyhf's schema.

    Arguments:
        path: The workspace file.
        where: The dotted config key that names the file, e.g.
            ``"analyses.demo.histfactory.workspace"``, for error messages.

    Returns:
        The workspace.

    Raises:
        ConfigError: Naming ``where`` and the file, with the JSON parser's or pyhf's
            message, if the file is missing, not JSON, or not a valid workspace.

    Example:
        >>> load_workspace(Path("config/workspaces/simple.json"), "w").measurement_names
        ['Measurement']
    """
    if not path.is_file():
        raise ConfigError(f"{where}: workspace file {str(path)!r} not found")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where}: {str(path)!r} is not a pyhf workspace: expected a JSON object with "
            f"'channels', 'observations', 'measurements' and 'version', got a {type(spec).__name__}"
        )
    try:
        with quiet_schema_validation():
            return pyhf.Workspace(spec)
    except PYHF_ERRORS as exc:
        raise ConfigError(
            f"{where}: {str(path)!r} is not a valid pyhf workspace: pyhf says: {exc}"
        ) from exc


def measurement_name(workspace: pyhf.Workspace, name: str | None, where: str, path: Path) -> str:
    """Returns the measurement to use: ``name``, or the workspace's first measurement.

    Arguments:
        workspace: The workspace.
        name: A measurement name, or ``None`` for the first.
        where: The dotted config key of ``name``, for error messages.
        path: The workspace file, for error messages.

    Raises:
        ConfigError: If the workspace has no measurement called ``name``.
    """
    if name is None:
        return workspace.measurement_names[0]
    try:
        with quiet_schema_validation():
            workspace.get_measurement(measurement_name=name)
    except pyhf.exceptions.InvalidMeasurement as exc:
        raise ConfigError(
            f"{where}: {str(path)!r} has no measurement {name!r} (pyhf says: {exc}); "
            f"its measurements are {', '.join(workspace.measurement_names)}"
        ) from exc
    return name


@contextmanager
def quiet_schema_validation() -> Iterator[None]:
    """Hides the one warning pyhf 0.7's schema validation always raises.

    pyhf validates through ``jsonschema.RefResolver``, deprecated since jsonschema
    4.18; the DeprecationWarning is about pyhf's code, not the user's workspace.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="jsonschema.RefResolver is deprecated", category=DeprecationWarning
        )
        yield
