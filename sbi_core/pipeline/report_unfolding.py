"""The unfolding section of summary.json and report.html."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from sbi_core.io import read_json

__all__ = ["summarize_unfolding", "render_unfolding"]


def summarize_unfolding(metrics: Sequence[str], closure: Sequence[str], ibu: Sequence[str]) -> dict[str, Any]:
    """Per method: the unfolded moments with bootstrap errors, C2ST against the true source (closure
    tests), the regenerated population's C2ST and KS checks, the closure numbers beside IBU's."""
    methods: dict[str, Any] = {}
    for metrics_path, closure_path in zip(metrics, closure, strict=True):
        fit, binned = read_json(metrics_path), read_json(closure_path)
        regenerated = fit["regenerated"]
        methods[fit["method"]] = {
            "population_size": fit["population_size"],
            "parameters": fit["parameters"],
            "log_marginal_likelihood": fit["log_marginal_likelihood"],
            "fit_seconds": fit["fit_seconds"],
            "estimator": fit["fit"]["estimator"],
            "num_atoms": fit["fit"]["num_atoms"],
            "c2st_truth": fit.get("c2st_truth"),
            "c2st_regenerated": None if regenerated is None else regenerated["c2st"],
            "regenerated_smallest_ks_pvalue": None if regenerated is None else regenerated["smallest_ks_pvalue"],
            "regenerated_neb_protocol_roc_auc": None if regenerated is None else regenerated.get("neb_protocol_roc_auc"),
            "closure": binned["closure"],
        }
    summary: dict[str, Any] = {"methods": methods}
    if ibu:
        results = read_json(ibu[0])
        summary["ibu"] = {"prior": results["prior"],
                          "num_iterations": {p: r["num_iterations"] for p, r in results["parameters"].items()}}
    return summary


def _c2st(result: dict | None, auc: bool = False) -> str:
    if result is None:
        return "—"
    text = f"{result['accuracy']:.3f} ± {result['stderr']:.3f}"
    return f"{text} (AUC {result['roc_auc']:.3f})" if auc else text


def render_unfolding(unfolding: dict[str, Any] | None) -> str:
    """The HTML section (empty when the stage is off)."""
    if not unfolding or not unfolding["methods"]:
        return ""
    rows, closure_rows = [], []
    for method, r in unfolding["methods"].items():
        moments = "; ".join(
            f"{name}: {m['mean']:.3f}" + (f" ± {m['mean_err']:.3f}" if "mean_err" in m else "")
            + f", sd {m['std']:.3f}" + (f" ± {m['std_err']:.3f}" if "std_err" in m else "")
            for name, m in r["parameters"].items()
        )
        ks = r["regenerated_smallest_ks_pvalue"]
        rows.append(
            f"<tr><th>{method.upper()}</th>"
            + "".join(f"<td>{html.escape(v)}</td>" for v in (
                moments, _c2st(r["c2st_truth"]), _c2st(r["c2st_regenerated"], auc=True),
                "—" if ks is None else f"{ks:.3g}", f"{r['estimator']}, K = {r['num_atoms']}", f"{r['fit_seconds']:.1f}",
            ))
            + "</tr>"
        )
        for parameter, c in r["closure"].items():
            ibu = (f"{c['ibu_chi2_per_bin']:.2f} / {c['ibu_best_chi2_per_bin']:.2f} (iteration {c['ibu_best_iteration']})"
                   if "ibu_chi2_per_bin" in c else "—")
            coverage = (f"{c['stat_band_coverage']:.2f} / {c['total_band_coverage']:.2f}"
                        if "stat_band_coverage" in c else "—")
            closure_rows.append(
                f"<tr><th>{method.upper()}</th>"
                + "".join(f"<td>{html.escape(v)}</td>" for v in (parameter, f"{c['chi2_per_bin']:.2f}", ibu, coverage))
                + "</tr>"
            )
    closure = ""
    if closure_rows:
        closure = (
            "<p>Closure against the true source, binned: χ² per bin with the statistical error a population of "
            "this size has in each bin (the same yardstick for NEB and IBU); IBU at its stopping iteration and at "
            "its best; the fraction of bins whose 68% band (bootstrap / bootstrap with the estimator spread) "
            "holds the truth.</p><table><tr><th>method</th><th>parameter</th><th>NEB χ²/bin</th>"
            "<th>IBU χ²/bin final / best</th><th>band coverage</th></tr>" + "".join(closure_rows) + "</table>"
        )
    return (
        "<h2>Unfolding (neural empirical Bayes)</h2><p>The source distribution behind the population, fitted "
        "with each estimator; errors from refits on bootstrap resamples of the population. C2ST truth: unfolded "
        "against true source samples (closure tests). C2ST regenerated: a population simulated from the fitted "
        "source against the observed one (0.5: indistinguishable), with the ROC AUC the NEB paper reports; "
        "KS: the smallest per-feature p-value.</p><table><tr><th>method</th><th>unfolded mean, sd</th>"
        "<th>C2ST truth</th><th>C2ST regenerated</th><th>min KS p</th><th>fit</th><th>fit seconds</th></tr>"
        + "".join(rows) + "</table>" + closure
    )
