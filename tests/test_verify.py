"""Stored numbers of reference analyses: the expected files' checks, and the comparison."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sbi_core.config import load_config, validate_config
from sbi_core.cli import main
from sbi_core.errors import ConfigError
from sbi_core.schema import is_design_only
from sbi_core.verify import format_table, load_expected, verify_analysis
from tests.conftest import REPO, SCHEMA

REFERENCES = sorted((REPO / "config" / "analyses").glob("*.expected.yaml"))
SUMMARY = {"methods": {"npe": {"c2st": {"o1": {"accuracy": 0.55}}, "coverage": {"verdict": "calibrated"}}},
           "design": {"best": {"best_design": [[1.5, 2.0]]}}}


def _write(folder: Path, expected: dict, analyses: tuple[str, ...] = ("demo",)) -> Path:
    (folder / "analysis.yaml").write_text(yaml.safe_dump({"analyses": {name: {} for name in analyses}}))
    path = folder / "demo.expected.yaml"
    path.write_text(yaml.safe_dump({"config": "analysis.yaml", "analysis": "demo", **expected}))
    return path


def test_numbers_pass_within_their_tolerance_and_verdicts_must_match(tmp_path):
    expected = load_expected(_write(tmp_path, {"checks": [
        {"metric": "methods/npe/c2st/o1/accuracy", "expected": 0.52, "tolerance": 0.03},
        {"metric": "methods/npe/c2st/o1/accuracy", "expected": 0.5, "tolerance": 0.03},
        {"metric": "methods/npe/coverage/verdict", "expected": "calibrated"},
        {"metric": "methods/npe/coverage/verdict", "expected": "overconfident"},
        {"metric": "methods/npe/coverage", "expected": 1.0, "tolerance": 1.0},
        {"metric": "design/best/best_design/0/1", "expected": 2.1, "tolerance": 0.2},  # a list's entry by position
        {"metric": "design/best/best_design/1/0", "expected": 1.5, "tolerance": 0.2},
    ]}))
    results = verify_analysis(SUMMARY, expected)
    assert [r.passed for r in results] == [True, False, True, False, False, True, False]
    assert results[1].reason == "off by 0.05" and results[4].reason == "not a finite number"
    assert results[5].observed == 2.0 and results[6].reason == "missing from summary.json"
    table = format_table("demo", results)
    assert table.splitlines()[-1] == "  3 of 7 checks pass: NOT reproduced"
    assert "±0.03" in table and "exact" in table


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"checks": [{"metric": "a/b", "expected": 0.5, "tolerance": -0.1}]},
         "checks.0.tolerance: -0.1 is less than the minimum of 0"),
        ({"checks": [{"metric": "a/b", "expected": 0.5}]}, "checks.0.tolerance: required for the number a/b"),
        ({"checks": [{"metric": "a//b", "expected": "x"}]}, "checks.0.metric"),
        ({"checks": []}, "checks: [] should be non-empty"),
        ({"checks": [{"metric": "a", "expected": 1, "tolerance": 0}], "extra": 1}, "'extra' was unexpected"),
    ],
)
def test_malformed_expected_files_are_refused_naming_the_key(tmp_path, expected, message):
    path = _write(tmp_path, expected)
    with pytest.raises(ConfigError, match="demo.expected.yaml: ") as error:
        load_expected(path)
    assert message in str(error.value)


def test_expected_file_must_name_an_analysis_of_its_config(tmp_path):
    path = _write(tmp_path, {"checks": [{"metric": "a", "expected": "x"}]}, analyses=("other",))
    with pytest.raises(ConfigError, match="analysis: 'demo' is not in .*analysis.yaml's analyses \\['other'\\]"):
        load_expected(path)
    path.write_text(yaml.safe_dump({"config": "missing.yaml", "analysis": "demo", "checks": [{"metric": "a", "expected": "x"}]}))
    with pytest.raises(ConfigError, match="config: missing.yaml is not a file"):
        load_expected(path)


def test_the_reference_analyses_are_shipped_with_stored_numbers():
    tasks, unfolding_tasks, design_tasks = set(), set(), set()
    for path in REFERENCES:
        expected = load_expected(path)
        assert expected.config == path.with_name(path.name.replace(".expected", "")).resolve()
        config = validate_config(load_config(expected.config), SCHEMA, check_files=False)
        analysis = config["analyses"][expected.analysis]
        assert config["targets"] == [expected.analysis]
        if is_design_only(analysis):  # every method's re-estimated best design is stored
            design_tasks.add(analysis["design"]["task"])
            metrics = {c["metric"] for c in expected.checks}
            assert {f"design/methods/{m}/best_eig" for m in analysis["design"]["methods"]} <= metrics
            continue
        if analysis["unfolding"]["activate"]:
            unfolding_tasks.add(analysis["task"])
            _check_unfolding_reference(analysis, expected.checks)
            continue
        tasks.add(analysis["task"])
        assert {"npe", "nre"} <= set(analysis["methods"])
        assert analysis["simulations"]["train"] >= 10_000  # the published (sbibm) budget
        observations = {o["name"] for o in analysis["observations"]}
        for check in expected.checks:
            keys = check["metric"].split("/")
            if keys[0] == "methods":  # every method and observation a check names is in the config
                assert keys[1] in analysis["methods"], check["metric"]
                if keys[2] in ("c2st", "ppc"):
                    assert keys[3] in observations, check["metric"]
        checked = {tuple(c["metric"].split("/")[1:3]) for c in expected.checks if c["metric"].startswith("methods/")}
        assert {(m, "c2st") for m in analysis["methods"]} <= checked, "every method's C2ST is stored"
    assert {"gaussian_linear", "two_moons"} <= tasks
    # slcp (config/analyses/unfolding_slcp.yaml) has no stored numbers yet.
    assert {"gaussian_smearing", "falling_spectrum", "two_moons"} <= unfolding_tasks
    assert {"location_finding", "pharmacokinetic", "counting_cut"} <= design_tasks


def _check_unfolding_reference(analysis: dict, checks: list[dict]) -> None:
    """The issue's protocol: 10,000 observations, at most 10^5 training simulations, and per method the
    C2STs against the true source and of the regenerated population stored."""
    unfolding = analysis["unfolding"]
    assert unfolding["population"]["size"] >= 10_000
    assert 10_000 <= analysis["simulations"]["train"] <= 100_000
    metrics = {c["metric"] for c in checks}
    for method in unfolding.get("methods") or analysis["methods"]:
        assert f"unfolding/methods/{method}/c2st_truth/accuracy" in metrics, method
        assert f"unfolding/methods/{method}/c2st_regenerated/accuracy" in metrics, method


def test_verify_without_results_says_so_and_fails(tmp_path, capsys):
    path = _write(tmp_path, {"checks": [{"metric": "a", "expected": "x"}]})
    assert main(["verify", str(path), "--directory", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"demo: {tmp_path}/results/demo/summary.json does not exist; run the analysis (or pass --rerun)" in captured.err
    assert captured.out.strip() == "0 of 1 reference analyses reproduced"


def test_verify_refuses_a_malformed_expected_file_before_running_anything(tmp_path, capsys):
    path = _write(tmp_path, {"checks": [{"metric": "a", "expected": 0.5}]})
    assert main(["verify", str(path), "--rerun", "--directory", str(tmp_path)]) == 2
    assert "checks.0.tolerance: required for the number a" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_verify_rerun_that_fails_says_so(tmp_path, capsys):
    path = _write(tmp_path, {"checks": [{"metric": "a", "expected": "x"}]})
    (tmp_path / "analysis.yaml").write_text(yaml.safe_dump({"analyses": {"demo": {"task": "no_such_task"}}}))
    assert main(["verify", str(path), "--rerun", "--cores", "1", "--directory", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "demo: the rerun failed; nothing to compare" in captured.err
    assert captured.out.splitlines()[0].startswith("rerunning: ") and "--forceall" in captured.out
    assert captured.out.splitlines()[-1] == "0 of 1 reference analyses reproduced"
