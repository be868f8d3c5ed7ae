"""The experimental-design section of summary.json and report.html."""

from __future__ import annotations

import html
from typing import Any

from sbi_core.io import read_json

__all__ = ["summarize_design", "render_design"]


def summarize_design(best_design: str) -> dict[str, Any]:
    """The best design overall and per method, each re-estimated on fresh simulations, from best_design.json."""
    best = read_json(best_design)
    keys = ("best_design", "best_eig", "best_eig_stderr", "best_from", "reestimated_by", "estimator", "exact_eig_of_best",
            "candidate_eig", "ascent_eig")
    return {"task": best["task"], "num_experiments": best["num_experiments"],
            "design_variables": best["design_variables"], "best": best["best"],
            "methods": {m: {k: r[k] for k in keys if k in r} for m, r in best["methods"].items()},
            "warnings": best.get("warnings", [])}


def _design(values: list) -> str:
    return "; ".join("(" + ", ".join(f"{v:.3g}" for v in experiment) + ")" for experiment in values)


def render_design(design: dict[str, Any] | None) -> str:
    """The HTML section (empty when the stage is off)."""
    if not design:
        return ""
    rows = []
    for method, r in design["methods"].items():
        exact = f"{r['exact_eig_of_best']:.3f}" if "exact_eig_of_best" in r else "—"
        ascent = f"{r['ascent_eig']:.3f}" if "ascent_eig" in r else "—"
        rows.append(f"<tr><th>{html.escape(method)}</th>" + "".join(f"<td>{html.escape(v)}</td>" for v in (
            r["estimator"], _design(r["best_design"]), f"{r['best_eig']:.3f} ± {r['best_eig_stderr']:.3f}",
            f"{r['reestimated_by']}, from the {r.get('best_from', 'candidates')}", exact, f"{r['candidate_eig']:.3f}", ascent)) + "</tr>")
    best = design["best"]
    warned = "".join(f"<p><strong>Warning:</strong> {html.escape(w)}</p>" for w in design.get("warnings", []))
    return (
        f"<h2>Experimental design ({html.escape(design['task'])}, T = {design['num_experiments']})</h2>"
        f"<p>Best design: {html.escape(_design(best['best_design']))} "
        f"({html.escape(', '.join(design['design_variables']))} per experiment), EIG "
        f"{best['best_eig']:.3f} ± {best['best_eig_stderr']:.3f} nats, found with {html.escape(best['method'])}. "
        "Each method's best design is re-estimated on fresh simulations (the optimiser's own estimate is biased "
        "upward); the candidate and ascent columns are the method's own estimates.</p>"
        "<table><tr><th>method</th><th>EIG bound</th><th>best design</th><th>EIG re-estimated</th><th>by</th>"
        "<th>exact EIG</th><th>best candidate</th><th>ascent</th></tr>" + "".join(rows) + "</table>" + warned
    )
