"""The config's schema: types, ranges, required keys and defaults, with the key named on error.

Light on purpose (jsonschema and yaml, no torch): every Snakemake job re-parses the
Snakefile and fills in the defaults with it, while the semantic checks of
:mod:`sbi_core.config` run once, in the main process.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sbi_core.errors import ConfigError
from sbi_core.estimators.registry import METHODS

__all__ = ["TASK_KEYS", "task_settings", "load_schema", "check_schema"]

# The analysis keys that define the task (prior, simulator, parameters): every step reads them.
TASK_KEYS = ("task", "histfactory", "simulator", "prior", "parameter_names")


def task_settings(analysis: dict[str, Any]) -> dict[str, Any]:
    """The task-defining keys of an analysis, all a step needs to build its task.

    Example:
        >>> task_settings({"task": "two_moons", "seed": 1, "methods": ["npe"]})
        {'task': 'two_moons'}
    """
    return {key: analysis[key] for key in TASK_KEYS if key in analysis}


def _with_defaults(validator_class: type) -> type:
    """Extends a jsonschema validator so that it fills in `default` values."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _dotted(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<config>"


def load_schema(schema_path: str | Path) -> dict:
    """Reads a YAML JSON schema; a ``$defs.method`` gets the registry's method names as its enum,
    so the methods are listed once (:mod:`sbi_core.estimators.registry`)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    if "method" in schema.get("$defs", {}):
        schema["$defs"]["method"]["enum"] = list(METHODS)
    return schema


def check_schema(data: dict, schema_path: str | Path, where: str = "") -> dict:
    """Validates `data` against a YAML JSON schema, filling in defaults in place.

    Raises:
        ConfigError: naming the dotted key (after `where`), the problem and what was expected.
    """
    schema = load_schema(schema_path)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"{where}{_dotted(error.absolute_path)}: {error.message}{_expected(error)}")
    return data


def _expected(error: jsonschema.ValidationError) -> str:
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    return f" (expected: {description.strip()})" if description else ""
