"""Steps `design_train` and `design`: experimental design in the workflow.

`design_train` trains one amortised estimator on simulations at designs drawn over the
whole space; `design` scores candidate designs with every method (``eig.csv``), runs
multi-start gradient ascent with each method (through the simulator, or for one without
gradients through the design NLE's flow when NLE is among the methods), re-estimates each
method's best candidate and ascent winner on the same fresh simulations (sPCE at large L where
the simulator has a likelihood, else the method itself; the higher is the method's best design),
and writes ``best_design.json``, the ascent's paths and a plot.
"""

from __future__ import annotations

import csv
import time
import warnings
from typing import Any

import torch
from tqdm.auto import tqdm

from sbi_core.design.eig import EIGEstimate, estimator_eig, likelihood_eig
from sbi_core.design.optimise import multistart_ascent
from sbi_core.design.plots import plot_design
from sbi_core.design.space import DesignSpace
from sbi_core.design.surrogate import surrogate_task
from sbi_core.design.tasks import LIKELIHOOD_METHODS, DesignTask, build_design_task
from sbi_core.design.training import train_design_estimator
from sbi_core.estimators import load_estimator, require_device
from sbi_core.io import atomic_path, provenance, save_arrays, write_json
from sbi_core.pipeline.train import write_loss_history
from sbi_core.seeding import derive_seed, seed_everything

__all__ = ["design_train", "design", "flat_eig_warning"]

# The most candidate designs scored: the full grid up to this many points, else as many uniform draws.
_MAX_CANDIDATES = 4096
# Candidates per batched EIG call (memory).
_CANDIDATE_BATCH = 256


def design_train(
    settings: dict[str, Any], training: dict[str, Any], name: str, method: str, seed: int, device: str,
    estimator: str, history: str,
) -> None:
    """Trains `method` amortised over the design space; writes the estimator and its loss history."""
    where = f"analyses.{name}.design"
    task = build_design_task(settings, where)
    seed_everything(derive_seed(seed, "design", "train", method))
    merged = {**training, **settings.get("training", {})}
    trained, losses = train_design_estimator(method, task, settings["simulations"], merged,
                                             require_device(device, f"analyses.{name}.device"))
    trained.hyperparameters.update(design_task=task.name, num_experiments=task.space.num_experiments)
    record = provenance({"design": settings, "training": merged, "method": method}, seed)
    trained.save(estimator, record)
    write_loss_history(history, losses)


def _scorer(task: DesignTask, method: str, estimators: dict, settings: dict[str, Any], outer: int, inner: int):
    """``designs -> EIGEstimate`` for one method, at the given sample sizes."""
    if method in LIKELIHOOD_METHODS:
        return lambda d: likelihood_eig(task, d, outer, inner, upper=method == "snmc")
    groups = min(settings["num_contrastive"], outer)
    outer = max(groups, outer // groups * groups)
    return lambda d: estimator_eig(estimators[method], task, d, outer, groups)


def flat_eig_warning(method: str, curve: EIGEstimate, where: str, level: float = 0.01) -> str | None:
    """A warning when a method's EIG does not vary over the candidates beyond its noise: the
    chi-square test of one constant EIG (each candidate's own standard error) cannot reject it at
    `level`. A simulator that ignores its design looks like this."""
    from scipy.stats import chi2

    eig, err = curve.eig.double(), curve.stderr.double().clamp_min(1e-12)
    weights = err**-2
    constant = (weights * eig).sum() / weights.sum()
    statistic = float((((eig - constant) / err) ** 2).sum())
    pvalue = float(chi2.sf(statistic, max(1, len(eig) - 1)))
    if pvalue < level:
        return None
    return (f"{where}.methods: {method}'s EIG is flat over the candidates (spread {float(eig.max() - eig.min()):.3g} "
            f"nats; chi-square test of a constant EIG p = {pvalue:.2g}): does the simulator use its design?")


def _candidates(space: DesignSpace, points: int, generator: torch.Generator) -> torch.Tensor:
    """The full grid when it has at most ``_MAX_CANDIDATES`` points, else uniform random designs."""
    if points ** (space.num_experiments * space.dim) <= _MAX_CANDIDATES:
        return space.grid(points)
    return space.sample(_MAX_CANDIDATES, generator=generator)


def design(
    settings: dict[str, Any], name: str, seed: int, device: str, estimators: dict[str, str],
    eig_csv: str, best: str, ascent: str, plot: str,
) -> None:
    """Scores candidates, optimises and re-estimates with every method; writes four files.

    Arguments:
        settings: The analysis's ``design`` block.
        name: The analysis name.
        seed: The analysis seed.
        device: Where estimators and designs live.
        estimators: ``{method: .pt}`` of the trained methods.
        eig_csv, best, ascent, plot: The outputs.
    """
    where = f"analyses.{name}.design"
    task = build_design_task(settings, where)
    device = require_device(device, f"analyses.{name}.device")
    loaded = {m: load_estimator(p, prior=task.prior, device=device) for m, p in estimators.items()}
    optimiser, fresh = settings["optimiser"], settings["reestimate"]
    generator = torch.Generator().manual_seed(derive_seed(seed, "design", "candidates"))
    candidates = _candidates(task.space, settings["candidates"], generator).to(device)
    # A black box is climbed through the design NLE's reparametrised flow, where one was trained.
    ascent_task = task if task.differentiable else surrogate_task(task, loaded["nle"]) if "nle" in loaded else None
    curves, results, paths, flat_warnings = {}, {}, {}, []
    for method in settings["methods"]:
        seed_everything(derive_seed(seed, "design", "score", method))
        started = time.perf_counter()
        score = _scorer(task, method, loaded, settings, settings["num_outer"], settings["num_inner"])
        with torch.no_grad():
            estimates = [score(candidates[s:s + _CANDIDATE_BATCH]) for s in
                         tqdm(range(0, len(candidates), _CANDIDATE_BATCH), desc=f"design: {method} on the candidates")]
        curve = EIGEstimate(torch.cat([e.eig for e in estimates]).cpu(), torch.cat([e.stderr for e in estimates]).cpu(),
                            estimates[0].method, estimates[0].num_outer, estimates[0].num_inner)
        curves[method] = curve
        flat = flat_eig_warning(method, curve, where)
        if flat:
            warnings.warn(flat, stacklevel=1)
            flat_warnings.append(flat)
        contenders = {"candidates": candidates[curve.eig.argmax()].cpu()}
        record = {"candidate_best": contenders["candidates"].tolist(), "candidate_eig": float(curve.eig.max()),
                  "scoring_seconds": time.perf_counter() - started}
        if ascent_task is not None and optimiser["starts"] > 0:
            seed_everything(derive_seed(seed, "design", "ascent", method))
            started = time.perf_counter()
            step_score = _scorer(ascent_task, method, loaded, settings, optimiser["num_outer"], optimiser["num_inner"])
            result = multistart_ascent(
                lambda d: step_score(d).eig, task.space, optimiser["starts"], optimiser["steps"],
                optimiser["learning_rate"], generator=torch.Generator().manual_seed(derive_seed(seed, "design", "starts")),
                device=device)
            with torch.no_grad():
                final = score(result.final.to(device))
            paths[method] = result
            contenders["ascent"] = result.final[final.eig.argmax().cpu()]
            record.update(ascent_best=contenders["ascent"].tolist(), ascent_eig=float(final.eig.max()),
                          ascent_seconds=time.perf_counter() - started, ascent_through=ascent_task.name)
        seed_everything(derive_seed(seed, "design", "reestimate", method))
        # The best candidate and the ascent's winner, re-estimated on the same fresh simulations; the higher wins.
        judge = "spce" if task.log_likelihood is not None else method
        with torch.no_grad():
            again = _scorer(task, judge, loaded, settings, fresh["num_outer"], fresh["num_inner"])(
                torch.stack(list(contenders.values())).to(device))
        pick = int(again.eig.argmax())
        best_design = list(contenders.values())[pick]
        record.update(best_design=best_design.tolist(), best_eig=float(again.eig[pick]),
                      best_eig_stderr=float(again.stderr[pick]), best_from=list(contenders)[pick],
                      reestimates={k: float(e) for k, e in zip(contenders, again.eig)},
                      reestimated_by=again.method, estimator=curve.method)
        if task.exact_eig is not None:
            record["exact_eig_of_best"] = float(task.exact_eig(best_design[None])[0])
        results[method] = record
    _write_eig_csv(eig_csv, task.space, candidates.cpu(), curves)
    overall = max(results, key=lambda m: results[m]["best_eig"])
    summary = {"task": task.name, "num_experiments": task.space.num_experiments,
               "design_variables": list(task.space.names), "space": {"low": task.space.low.tolist(), "high": task.space.high.tolist()},
               "best": {"method": overall, **{k: results[overall][k] for k in ("best_design", "best_eig", "best_eig_stderr")}},
               "methods": results, "warnings": flat_warnings, "provenance": provenance({"design": settings}, seed)}
    if task.exact_eig is not None:
        summary["exact_eig_at_candidates_max"] = float(task.exact_eig(candidates.cpu()).max())
    write_json(best, summary)
    save_arrays(ascent, {f"{m}_{k}": getattr(r, k).numpy() for m, r in paths.items() for k in ("paths", "values")},
                summary["provenance"])
    plot_design(task, candidates.cpu(), curves, paths, results, plot, title=f"{name}: EIG of {task.name}")


def _write_eig_csv(path: str, space: DesignSpace, candidates: torch.Tensor, curves: dict[str, EIGEstimate]) -> None:
    """One row per (candidate, method): the design's variables, the method, EIG and standard error."""
    columns = [f"{n}_{t + 1}" if space.num_experiments > 1 else n for t in range(space.num_experiments) for n in space.names]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["design", *columns, "method", "eig", "stderr"])
        flat = candidates.flatten(1).numpy()
        for method, curve in curves.items():
            for i, (values, eig, err) in enumerate(zip(flat, curve.eig.numpy(), curve.stderr.numpy())):
                writer.writerow([i, *(f"{v:.6g}" for v in values), curve.method, f"{eig:.6g}", f"{err:.3g}"])

