"""Imports user code (simulators, priors) named as ``"package.module:function"``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sbi_core.errors import ConfigError

__all__ = ["import_callable"]


def import_callable(path: str, where: str) -> Callable[..., Any]:
    """Imports the callable named by ``path``.

    Arguments:
        path: ``"package.module:function"``; the part after ``:`` may be dotted
            (``"module:Class.method"``).
        where: The dotted config key holding ``path``, used in error messages.

    Returns:
        The callable.

    Raises:
        ConfigError: If ``path`` is malformed, the module fails to import, the
            attribute is missing, or it is not callable.

    Example:
        >>> import_callable("math:sqrt", "analyses.demo.simulator")(4.0)
        2.0
    """
    if not isinstance(path, str) or path.count(":") != 1:
        raise ConfigError(f"{where}: expected 'package.module:function', got {path!r}")
    module_name, attribute = (part.strip() for part in path.split(":"))
    if not module_name or not attribute:
        raise ConfigError(f"{where}: expected 'package.module:function', got {path!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"{where}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc}); is it installed or on PYTHONPATH?"
        ) from exc
    for i, name in enumerate(attribute.split(".")):
        if not hasattr(obj, name):
            owner = ".".join([module_name, *attribute.split(".")[:i]])
            raise ConfigError(
                f"{where}: {owner!r} has no attribute {name!r} (from {path!r})"
            )
        obj = getattr(obj, name)
    if not callable(obj):
        raise ConfigError(
            f"{where}: {path!r} is a {type(obj).__name__}, not a callable"
        )
    return obj
