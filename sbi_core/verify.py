"""Reference analyses: compare a run's summary.json with stored numbers and tolerances.

A reference analysis is a config in ``config/analyses/`` with an
``<name>.expected.yaml`` beside it: the numbers a published run gave (C2ST,
calibration), each with a tolerance. :func:`verify_analysis` checks a summary
against them and :func:`format_table` says plainly which numbers reproduce.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sbi_core.config import load_config
from sbi_core.schema import check_schema
from sbi_core.errors import ConfigError
from sbi_core.io import write_json

__all__ = ["Expected", "CheckResult", "load_expected", "verify_analysis", "format_table", "write_verification"]

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "expected.schema.yaml"


@dataclass(frozen=True)
class Expected:
    """A reference analysis's stored numbers (a validated expected file)."""

    path: Path
    config: Path
    analysis: str
    checks: list[dict[str, Any]]


@dataclass(frozen=True)
class CheckResult:
    """One stored number against a rerun's."""

    metric: str
    expected: float | str
    tolerance: float | None
    observed: float | str | None
    passed: bool
    reason: str


def load_expected(path: str | Path) -> Expected:
    """Reads and checks an expected file: its schema, its config and its analysis.

    Raises:
        ConfigError: naming the file and key when the file, its config or the analysis
            is missing or malformed, or a numeric check has no tolerance.
    """
    path = Path(path)
    data = check_schema(load_config(path), SCHEMA, where=f"{path}: ")
    config_path = (path.parent / data["config"]).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{path}: config: {data['config']} is not a file (expected a path relative to {path.parent})")
    analyses = load_config(config_path).get("analyses") or {}
    if data["analysis"] not in analyses:
        raise ConfigError(f"{path}: analysis: {data['analysis']!r} is not in {config_path}'s analyses {sorted(analyses)}")
    for index, check in enumerate(data["checks"]):
        if not isinstance(check["expected"], str) and "tolerance" not in check:
            raise ConfigError(f"{path}: checks.{index}.tolerance: required for the number {check['metric']}")
    return Expected(path, config_path, data["analysis"], data["checks"])


def _lookup(summary: dict, metric: str) -> Any:
    value: Any = summary
    for key in metric.split("/"):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]  # a list's entry by position: design/best/best_design/0/1
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return None
    return value


def _check(check: dict[str, Any], observed: Any) -> CheckResult:
    metric, expected = check["metric"], check["expected"]
    tolerance = check.get("tolerance")
    if observed is None:
        return CheckResult(metric, expected, tolerance, None, False, "missing from summary.json")
    if isinstance(expected, str):
        passed = observed == expected
        return CheckResult(metric, expected, None, observed, passed, "" if passed else "differs")
    if isinstance(observed, bool) or not isinstance(observed, (int, float)) or not math.isfinite(observed):
        return CheckResult(metric, expected, tolerance, observed, False, "not a finite number")
    deviation = abs(observed - expected)
    passed = deviation <= tolerance or math.isclose(deviation, tolerance, rel_tol=1e-9)  # 0.55 - 0.52 vs 0.03
    return CheckResult(metric, expected, tolerance, observed, passed, "" if passed else f"off by {deviation:.3g}")


def verify_analysis(summary: dict, expected: Expected) -> list[CheckResult]:
    """Checks every stored number against `summary` (a run's summary.json)."""
    return [_check(check, _lookup(summary, check["metric"])) for check in expected.checks]


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(title: str, results: list[CheckResult]) -> str:
    """A plain-text pass/fail table, one row per stored number, and a count line."""
    header = ("metric", "expected", "tolerance", "observed", "result")
    rows = [
        (
            r.metric,
            _show(r.expected),
            "exact" if r.tolerance is None else f"±{r.tolerance:.3g}",
            _show(r.observed),
            "pass" if r.passed else f"FAIL ({r.reason})",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [title, *("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *rows))]
    passed = sum(r.passed for r in results)
    verdict = "reproduced" if passed == len(results) else "NOT reproduced"
    lines.append(f"  {passed} of {len(results)} checks pass: {verdict}")
    return "\n".join(lines)


def write_verification(path: str | Path, expected: Expected, summary: dict, results: list[CheckResult]) -> None:
    """Records a verification beside the summary, with the summary's provenance."""
    write_json(
        path,
        {
            "analysis": expected.analysis,
            "expected_file": str(expected.path),
            "passed": all(r.passed for r in results),
            "checks": [asdict(r) for r in results],
            "provenance": summary.get("provenance"),
        },
    )
