"""Step `report`: summary.json with the key numbers and a self-contained HTML report."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from sbi_core.io import atomic_path, provenance, read_json, write_json

__all__ = ["report", "summarize"]


def report(
    analysis: dict,
    name: str,
    simulation_metadata: list[str],
    estimator_metadata: list[str],
    calibrations: list[str],
    plots: list[str],
    summary: str,
    html_report: str,
) -> None:
    """Collects the analysis's metadata and diagnostics into summary.json and report.html."""
    numbers = summarize(analysis, name, simulation_metadata, estimator_metadata, calibrations)
    write_json(summary, numbers)
    with atomic_path(html_report) as tmp:
        tmp.write_text(_render(numbers, plots))


def summarize(
    analysis: dict, name: str, simulation_metadata: list[str], estimator_metadata: list[str], calibrations: list[str]
) -> dict:
    """The key numbers of an analysis: simulations, training, SBC and C2ST per method."""
    simulations = {}
    for path in simulation_metadata:
        meta = read_json(path)
        simulations[meta["split"]] = {
            k: meta[k] for k in ("source", "num_simulated", "num_invalid", "num_valid")
        }
    methods = {}
    for estimator_path, calibration_path in zip(estimator_metadata, calibrations, strict=True):
        trained, calibration = read_json(estimator_path), read_json(calibration_path)
        methods[trained["method"]] = {
            "epochs_trained": trained["epochs_trained"],
            "best_validation_loss": trained["best_validation_loss"],
            "training_seconds": trained["training_seconds"],
            "sbc": calibration["sbc"],
            "c2st": calibration["c2st"],
            "diagnostics_seconds": calibration["seconds"],
        }
    return {
        "analysis": name,
        "task": analysis["task"],
        "seed": analysis["seed"],
        "simulations": simulations,
        "methods": methods,
        "provenance": provenance(analysis, analysis["seed"]),
    }


def _render(numbers: dict, plots: list[str]) -> str:
    rows = []
    for method, result in numbers["methods"].items():
        c2st = "; ".join(
            f"{obs}: {r['accuracy']:.3f} ± {r['stderr']:.3f}" for obs, r in result["c2st"].items()
        ) or "no reference"
        rows.append(
            f"<tr><td>{method.upper()}</td><td>{result['epochs_trained']}</td>"
            f"<td>{result['best_validation_loss']:.3f}</td><td>{result['training_seconds']:.1f}</td>"
            f"<td>{result['sbc']['min_ks_pvalue']:.3g}</td><td>{result['sbc']['min_chi2_pvalue']:.3g}</td>"
            f"<td>{html.escape(c2st)}</td><td>{result['diagnostics_seconds']:.1f}</td></tr>"
        )
    sims = "".join(
        f"<tr><td>{split}</td><td>{html.escape(str(s['source']))}</td><td>{s['num_simulated']}</td>"
        f"<td>{s['num_invalid']}</td><td>{s['num_valid']}</td></tr>"
        for split, s in numbers["simulations"].items()
    )
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()}" '
        f'alt="{html.escape(Path(p).name)}"><figcaption>{html.escape(_caption(p))}</figcaption></figure>'
        for p in plots
    )
    prov = numbers["provenance"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sbi_core report: {html.escape(numbers['analysis'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:right}}figure{{display:inline-block;margin:0.5em}}
img{{max-width:520px}}figcaption{{font-size:0.9em;color:#444}}</style></head><body>
<h1>Analysis <code>{html.escape(numbers['analysis'])}</code> (task {html.escape(numbers['task'])}, seed {numbers['seed']})</h1>
<h2>Simulations</h2>
<table><tr><th>split</th><th>source</th><th>simulated</th><th>invalid (dropped)</th><th>used</th></tr>{sims}</table>
<h2>Estimators and calibration</h2>
<p>SBC: smallest p-value over parameters of the KS and chi-square uniformity tests of the ranks
(small values flag miscalibration). C2ST: classifier accuracy between posterior and reference samples
(0.5 is indistinguishable), ± its binomial standard error.</p>
<table><tr><th>method</th><th>epochs</th><th>best val. loss</th><th>training s</th><th>SBC min KS p</th>
<th>SBC min χ² p</th><th>C2ST</th><th>diagnostics s</th></tr>{''.join(rows)}</table>
<h2>Plots</h2>{figures}
<h2>Provenance</h2><pre>{html.escape(str(prov))}</pre>
</body></html>
"""


def _caption(path: str) -> str:
    p = Path(path)
    if p.name.endswith("_loss.png"):
        return f"Training and validation loss of {p.name.removesuffix('_loss.png').upper()}"
    if p.name == "sbc_ranks.png":
        return f"SBC rank histograms of {p.parent.name.upper()} with the 99% band of a uniform histogram"
    return f"Posterior pair plot of {p.parent.name.upper()} for {p.stem.removeprefix('pair_')}"
