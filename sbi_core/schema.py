"""The config's schema: types, ranges, required keys and defaults, with the key named on error.

Light on purpose (jsonschema and yaml, no torch): every Snakemake job re-parses the
Snakefile and fills in the defaults with it, while the semantic checks of
:mod:`sbi_core.config` run once, in the main process.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sbi_core.errors import ConfigError
from sbi_core.estimators.registry import METHODS

__all__ = ["TASK_KEYS", "task_settings", "is_design_only", "read_yaml", "load_schema", "check_schema"]

# The analysis keys that define the task (prior, simulator, parameters): every step reads them.
TASK_KEYS = ("task", "histfactory", "simulator", "prior", "parameter_names")


def task_settings(analysis: dict[str, Any]) -> dict[str, Any]:
    """The task-defining keys of an analysis, all a step needs to build its task.

    Example:
        >>> task_settings({"task": "two_moons", "seed": 1, "methods": ["npe"]})
        {'task': 'two_moons'}
    """
    return {key: analysis[key] for key in TASK_KEYS if key in analysis}


def is_design_only(analysis: dict[str, Any]) -> bool:
    """Whether a (schema-checked) analysis only designs an experiment: an active ``design`` block
    and none of the inference keys (no simulations, estimators, observations or report of them).

    Example:
        >>> is_design_only({"design": {"activate": True}}), is_design_only({"task": "two_moons", "methods": ["npe"]})
        (True, False)
    """
    return "methods" not in analysis and bool(analysis.get("design", {}).get("activate"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a key repeated in one mapping (where yaml lets the last one win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):  # yaml's own error follows
                continue
            if key in first_lines:
                raise ConfigError(
                    f"{key_node.start_mark.name}, line {line}: key {key!r} appears twice in one mapping "
                    f"(first on line {first_lines[key]}); keep one, or the last would silently win"
                )
            first_lines[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """Reads a YAML file, refusing repeated keys and naming the file and line of any error.

    Raises:
        ConfigError: The file is unreadable, not YAML, or repeats a key in one mapping.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            return yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except OSError as error:
        raise ConfigError(f"{path}: could not read the config: {error}") from error
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error


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
    schema = read_yaml(schema_path)
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
        raise ConfigError(f"{where}{_dotted(error.absolute_path)}: {_message(error)}{_expected(error)}")
    return data


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, but for a choice of keys (``oneOf`` of ``required`` sets) a plain one."""
    choices = [sub.get("required") for sub in error.validator_value] if error.validator == "oneOf" else [None]
    if None in choices or not isinstance(error.instance, dict):
        return error.message
    given = sorted({key for keys in choices for key in keys} & error.instance.keys())
    alternatives = " | ".join(" + ".join(keys) for keys in choices)
    return f"expected exactly one of {alternatives}; got {', '.join(given) if given else 'none of them'}"


def _expected(error: jsonschema.ValidationError) -> str:
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    return f" (expected: {description.strip()})" if description else ""
