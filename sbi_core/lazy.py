"""Packages whose public names load their submodule on first use (PEP 562).

``import sbi_core.estimators`` (or ``.pipeline``, ``.unfolding``) then costs nothing: a workflow
job imports only the step it runs, not sbi, zuko, arviz or matplotlib for every other step.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["is_tensor", "lazy_exports"]


def is_tensor(value: Any) -> bool:
    """Whether `value` is a torch tensor, without importing torch (no torch loaded: no tensor exists).

    Example:
        >>> is_tensor([1.0])
        False
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def lazy_exports(
    package: str, names: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of `package`.

    Arguments:
        package: The package's ``__name__``.
        names: ``{public name: submodule}``, the submodule relative to the package.
        namespace: The package's ``globals()``; a name, once loaded, is bound there.

    Example:
        >>> import os
        >>> namespace = {}
        >>> load, _ = lazy_exports("os", {"join": "path"}, namespace)
        >>> load("join") is os.path.join and namespace["join"] is os.path.join
        True
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        namespace[name] = value  # importing the submodule bound its own name here; the function wins
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *names])

    return __getattr__, __dir__
