"""Step `report`: summary.json with the key numbers and a self-contained HTML report."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from sbi_core.io import atomic_path, provenance, read_json, write_json
from sbi_core.pipeline.report_design import render_design, summarize_design
from sbi_core.pipeline.report_unfolding import render_unfolding, summarize_unfolding

__all__ = ["report", "summarize"]


def report(
    task_name: str,
    name: str,
    seed: int,
    simulation_metadata: list[str],
    estimator_metadata: list[str],
    calibrations: list[str],
    c2st: list[str],
    predictive_checks: list[str],
    limits: list[str],
    plots: list[str],
    summary: str,
    html_report: str,
    unfolding_metrics: Sequence[str] = (),
    unfolding_closure: Sequence[str] = (),
    unfolding_ibu: Sequence[str] = (),
    unfolding_plots: Sequence[str] = (),
    design_best: Sequence[str] = (),
    design_plots: Sequence[str] = (),
) -> None:
    """Collects the analysis's metadata, diagnostics, unfolding and design into summary.json and report.html."""
    numbers = summarize(
        task_name, name, seed, simulation_metadata, estimator_metadata, calibrations, c2st, predictive_checks, limits
    )
    if unfolding_metrics:
        numbers["unfolding"] = summarize_unfolding(unfolding_metrics, unfolding_closure, unfolding_ibu)
    if design_best:
        numbers["design"] = summarize_design(design_best[0])
    write_json(summary, numbers)
    with atomic_path(html_report) as tmp:
        tmp.write_text(_render(numbers, [*plots, *unfolding_plots, *design_plots]))


def summarize(
    task_name: str,
    name: str,
    seed: int,
    simulation_metadata: list[str],
    estimator_metadata: list[str],
    calibrations: list[str],
    c2st: Sequence[str] = (),
    predictive_checks: Sequence[str] = (),
    limits: Sequence[str] = (),
) -> dict:
    """The key numbers of an analysis: simulations; per method training, calibration verdicts,
    C2ST, predictive checks and the seconds each diagnostic took; CLs upper limits beside pyhf's."""
    simulations = {}
    for path in simulation_metadata:
        meta = read_json(path)
        simulations[meta["split"]] = {
            k: meta[k] for k in ("source", "num_simulated", "num_invalid", "num_valid")
        }
    c2st_results: dict[str, dict] = {}
    c2st_seconds: dict[str, float] = {}
    for path in c2st:
        result = read_json(path)
        c2st_seconds[result["method"]] = c2st_seconds.get(result["method"], 0.0) + result["seconds"]
        if result["accuracy"] is not None:  # None: the observation has no reference samples
            c2st_results.setdefault(result["method"], {})[result["observation"]] = {
                k: result[k] for k in ("accuracy", "stderr", "num_samples")
            }
    checks: dict[str, dict] = {}
    for path in predictive_checks:
        check = read_json(path)
        checks.setdefault(check["method"], {})[check["observation"]] = {
            k: check[k] for k in ("distance_pvalue", "min_feature_pvalue", "num_simulations", "seconds")
        }
    methods = {}
    for estimator_path, calibration_path in zip(estimator_metadata, calibrations, strict=True):
        trained, calibration = read_json(estimator_path), read_json(calibration_path)
        sbc, coverage, tarp = calibration["sbc"], calibration["coverage"], calibration["tarp"]
        method_checks = checks.get(trained["method"], {})
        extra_seconds = {
            "c2st": c2st_seconds.get(trained["method"], 0.0),
            "ppc": sum(c["seconds"] for c in method_checks.values()),
        }
        methods[trained["method"]] = {
            "epochs_trained": trained["epochs_trained"],
            "ensemble_members": len(trained.get("ensemble_members", [])) or 1,
            "best_validation_loss": trained["best_validation_loss"],
            "training_seconds": trained["training_seconds"],
            "num_simulations": calibration["num_simulations"],
            "num_samples": calibration["num_samples"],
            "sbc": {
                "min_ks_pvalue": sbc["parameters"]["min_ks_pvalue"],
                "min_chi2_pvalue": sbc["parameters"]["min_chi2_pvalue"],
                "log_density_ks_pvalue": sbc["log_density"]["min_ks_pvalue"],
                "log_density_chi2_pvalue": sbc["log_density"]["min_chi2_pvalue"],
            },
            "coverage": {k: coverage[k] for k in ("verdict", "max_deviation", "confidence")},
            "tarp": {k: tarp[k] for k in ("verdict", "atc", "atc_stderr", "ks_pvalue")},
            "c2st": c2st_results.get(trained["method"], {}),
            "ppc": {obs: {k: v for k, v in c.items() if k != "seconds"} for obs, c in method_checks.items()},
            "diagnostics_seconds": {
                **{k: v for k, v in calibration["seconds"].items() if k != "total"},
                **extra_seconds,
                "total": calibration["seconds"]["total"] + sum(extra_seconds.values()),
            },
        }
    upper_limits = {}
    for path in limits:
        result = read_json(path)
        upper_limits[result["method"]] = {
            observation: {
                "observed": r["ours"]["observed_limit"],
                "expected": r["ours"]["expected_limits"],
                "pyhf_observed": r["pyhf"]["observed_limit"],
                "pyhf_expected": r["pyhf"]["expected_limits"],
                "relative_difference": r["relative_difference"],
                # An ensemble's members' own observed limits: its spread.
                **({"members_observed": r["ours"]["members"]["observed_limits"]} if "members" in r["ours"] else {}),
            }
            for observation, r in result["limits"].items()
        }
    return {
        "analysis": name,
        "task": task_name,
        "seed": seed,
        "simulations": simulations,
        "methods": methods,
        "upper_limits": upper_limits,
        "provenance": provenance({"task": task_name}, seed),
    }


def _cells(*values: str) -> str:
    return "".join(f"<td>{html.escape(v)}</td>" for v in values)


def _verdict_rows(methods: dict) -> str:
    rows = []
    for method, r in methods.items():
        c2st = "; ".join(f"{obs}: {c['accuracy']:.3f} ± {c['stderr']:.3f}" for obs, c in r["c2st"].items())
        ppc = "; ".join(f"{obs}: {c['distance_pvalue']:.2f}" for obs, c in r["ppc"].items())
        tarp = r["tarp"]
        rows.append(
            f"<tr><th>{method.upper()}</th>"
            + _cells(
                f"{r['sbc']['min_ks_pvalue']:.3g} / {r['sbc']['min_chi2_pvalue']:.3g}",
                f"{r['sbc']['log_density_ks_pvalue']:.3g}",
                f"{r['coverage']['verdict']} (max dev. {r['coverage']['max_deviation']:.3f})",
                f"{tarp['verdict']} (ATC {tarp['atc']:+.3f} ± {tarp['atc_stderr']:.3f}, KS p {tarp['ks_pvalue']:.3g})",
                c2st or "no reference",
                ppc or "not run",
            )
            + "</tr>"
        )
    return "".join(rows)


def _timing_rows(methods: dict) -> str:
    steps = ("sampling", "log_density", "sbc", "coverage", "tarp", "c2st", "ppc", "total")
    rows = [
        f"<tr><th>{method.upper()}</th>"
        + _cells(f"{r['training_seconds']:.1f}", *(f"{r['diagnostics_seconds'].get(s, 0.0):.2f}" for s in steps))
        + "</tr>"
        for method, r in methods.items()
    ]
    header = "".join(f"<th>{s.replace('_', ' ')}</th>" for s in steps)
    return f"<tr><th>method</th><th>training</th>{header}</tr>{''.join(rows)}"


def _limit_rows(upper_limits: dict) -> str:
    rows = [
        f"<tr><th>{method.upper()}</th>"
        + _cells(
            observation,
            f"{r['observed']:.3f}" + (
                f" (members {min(r['members_observed']):.3f}–{max(r['members_observed']):.3f})"
                if "members_observed" in r else ""
            ),
            f"{r['expected'][2]:.3f} [{r['expected'][1]:.3f}, {r['expected'][3]:.3f}]",
            f"{r['pyhf_observed']:.3f}",
            f"{r['pyhf_expected'][2]:.3f} [{r['pyhf_expected'][1]:.3f}, {r['pyhf_expected'][3]:.3f}]",
            f"{r['relative_difference']['observed']:+.1%} / {r['relative_difference']['expected_median']:+.1%}",
        )
        + "</tr>"
        for method, observations in upper_limits.items()
        for observation, r in observations.items()
    ]
    if not rows:
        return ""
    return (
        "<h2>CLs upper limits on the POI</h2><p>From each likelihood or ratio estimator by the asymptotic "
        "formulae (q̃<sub>μ</sub>), beside pyhf.infer on the same workspace and data; expected: median "
        "[−1σ, +1σ].</p><table><tr><th>method</th><th>observation</th><th>observed</th><th>expected</th>"
        "<th>pyhf observed</th><th>pyhf expected</th><th>difference (obs. / exp.)</th></tr>"
        + "".join(rows) + "</table>"
    )


def _render(numbers: dict, plots: list[str]) -> str:
    methods = numbers["methods"]
    budget = next(iter(methods.values()), {"num_simulations": 0, "num_samples": 0})
    confidence = next(iter(methods.values()), {}).get("coverage", {}).get("confidence", 0.95)
    training = "".join(
        f"<tr><th>{m.upper()}</th>"
        + _cells(str(r["epochs_trained"]) + (f" (most of {r['ensemble_members']} members)" if r.get("ensemble_members", 1) > 1
                                              else ""),
                 f"{r['best_validation_loss']:.3f}" + (" (members' mean)" if r.get("ensemble_members", 1) > 1 else ""))
        + "</tr>"
        for m, r in methods.items()
    )
    sims = "".join(
        "<tr>" + _cells(split, str(s["source"]), str(s["num_simulated"]), str(s["num_invalid"]), str(s["num_valid"]))
        + "</tr>"
        for split, s in numbers["simulations"].items()
    )
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()}" '
        f'alt="{html.escape(Path(p).name)}"><figcaption>{html.escape(_caption(p))}</figcaption></figure>'
        for p in plots
    )
    prov = numbers["provenance"]
    # a design-only analysis has no simulations, estimators or calibration to show
    inference = f"""<h2>Simulations</h2>
<table><tr><th>split</th><th>source</th><th>simulated</th><th>invalid (dropped)</th><th>used</th></tr>{sims}</table>
<h2>Training</h2>
<table><tr><th>method</th><th>epochs</th><th>best val. loss</th></tr>{training}</table>
<h2>Calibration verdicts</h2>
<p>On {budget['num_simulations']} held-out test simulations with {budget['num_samples']} posterior samples each.
SBC: smallest p-value over parameters of the KS / chi-square uniformity tests of the ranks, and the KS p-value of
the log-density ranks (small values flag miscalibration). Coverage: expected coverage of HPD regions against the
{confidence:.0%} joint binomial band. TARP: area to curve (negative: too narrow) ± bootstrap standard error.
C2ST: classifier accuracy between posterior and reference samples (0.5 is indistinguishable) ± binomial
standard error. PPC: predictive p-value of the observation's distance from the posterior predictive mean.</p>
<table><tr><th>method</th><th>SBC min KS p / χ² p</th><th>SBC log-density KS p</th><th>HPD coverage</th>
<th>TARP</th><th>C2ST</th><th>PPC p</th></tr>{_verdict_rows(methods)}</table>
""" if methods or sims else ""
    timing = f"<h2>Time per method (seconds)</h2>\n<table>{_timing_rows(methods)}</table>\n" if methods else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sbi_core report: {html.escape(numbers['analysis'])}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:right}}figure{{display:inline-block;margin:0.5em}}
img{{max-width:520px}}figcaption{{font-size:0.9em;color:#444}}</style></head><body>
<h1>Analysis <code>{html.escape(numbers['analysis'])}</code> (task {html.escape(numbers['task'])}, seed {numbers['seed']})</h1>
{inference}{_limit_rows(numbers.get("upper_limits", {}))}
{render_unfolding(numbers.get("unfolding"))}
{render_design(numbers.get("design"))}
{timing}<h2>Plots</h2>{figures}
<h2>Provenance</h2><pre>{html.escape(str(prov))}</pre>
</body></html>
"""


def _caption(path: str) -> str:
    p = Path(path)
    method = p.parent.name.upper()
    if p.name.endswith("_loss.png"):
        return f"Training and validation loss of {p.name.removesuffix('_loss.png').upper()}"
    if p.name == "sbc_ranks.png":
        return f"SBC rank histograms of {method} with the 99% band of a uniform histogram"
    if p.name == "coverage.png":
        return f"Expected coverage of {method}'s HPD regions with the binomial band"
    if p.name == "tarp.png":
        return f"TARP expected coverage probability of {method} with its bootstrap band"
    if p.parent.name == "limits":
        return f"CLs scan of {p.stem.upper()} beside pyhf's"
    if p.parent.parent.name == "unfolding":
        what = {"spectra": "Unfolded spectra with bands, truth, prior and IBU",
                "pair": "Pair plot of the unfolded source", "regenerated": "Observed and regenerated population"}
        return f"{what.get(p.stem, p.stem)} ({method})"
    if p.parent.name == "design":
        return "Expected information gain against the design, with the optimiser's final starts; each method's best design"
    if p.name.startswith("ppc_"):
        return f"Posterior predictive check of {method} for {p.stem.removeprefix('ppc_')}"
    return f"Posterior pair plot of {method} for {p.stem.removeprefix('pair_')}"
