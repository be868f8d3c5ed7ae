"""EIG estimators against pyro.contrib.oed on location finding: error against a large-L sPCE, and time.

Issue 13's peer check. Location finding (Foster et al. 2021, T = 1 detector) at a few fixed
designs (the diagonal from (0, 0) to (4, 4) and two off it). The reference EIG of each design is
our sPCE with ``--ref-inner`` (10^5) contrastive samples and ``--ref-outer`` outer samples, and the
sNMC upper bound on the same draws (``--bracket-outer`` of them) shows how tight it is. Then, in
the same process, every estimator below is run ``--repeats`` times (seeds 1000 + r, after one
untimed warm-up call) and scored against the reference: mean absolute error over the designs,
mean signed error (bias), largest error, median wall time.

* ours: ``likelihood_eig`` sPCE (lower bound) and sNMC (``upper=True``), N outer samples with
  L fresh contrastive prior draws each;
* pyro: ``nmc_eig`` (N outer samples, M inner prior draws shared by every outer sample, the
  sNMC-type upper bound) and ``marginal_eig`` with a learnable Gaussian q(y | d) per design (the
  variational marginal bound of Foster et al. 2019, an upper bound), trained by Adam.

Equal sample budgets: N x L = N x M = 500 x 500 and nmc_eig's default 100 x 10 for both
libraries (N L likelihood evaluations each). nmc_eig re-uses its M inner draws for every outer
sample, so it evaluates the simulator's mean M times per design and only the Gaussian density
N M times; ours draws fresh contrastive parameters per outer sample (N L mean evaluations).
pyro is therefore also run at 1000 x 1000 and 2000 x 500, about the time of our 500 x 500.

The pyro model is written here from the paper, not from our code; ``model_check`` compares its
log-likelihood with the task's on random draws and runs ``nmc_eig`` at a large budget on every
design against the reference. pyro (``pyro-ppl``, the ``bench`` extra) is a benchmark-only
dependency.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/design_vs_pyro.py [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.contrib.oed.eig import marginal_eig, nmc_eig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import environment  # noqa: E402

from sbi_core.design import design_task, likelihood_eig  # noqa: E402
from sbi_core.io import write_json  # noqa: E402

DESIGNS = [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0), (1.0, -1.0), (0.0, 2.5)]


def pyro_model(design: torch.Tensor) -> torch.Tensor:
    """Location finding in pyro, vectorised over ``design [..., 2]`` (batch = ``design.shape[:-1]``):
    two sources theta_k ~ N(0, I_2), y = log(0.1 + sum_k 1 / (1e-4 + |xi - theta_k|^2)) + N(0, 0.5^2)."""
    batch = design.shape[:-1]
    theta = pyro.sample("theta", dist.Normal(torch.zeros(batch + (4,)), 1.0).to_event(1))
    sources = theta.reshape(batch + (2, 2))
    squared = ((design.unsqueeze(-2) - sources) ** 2).sum(-1)
    mean = torch.log(0.1 + (1.0 / (1e-4 + squared)).sum(-1))
    return pyro.sample("y", dist.Normal(mean, 0.5))


def gaussian_marginal_guide(design: torch.Tensor, observation_labels, target_labels) -> None:
    """q(y | d) = N(mu_d, sigma_d), one learnable Gaussian per design."""
    num_designs = design.shape[-2]
    mu = pyro.param("q_mu", torch.zeros(num_designs))
    sigma = pyro.param("q_sigma", torch.ones(num_designs), constraint=dist.constraints.positive)
    pyro.sample("y", dist.Normal(mu, sigma))


def estimators(args: argparse.Namespace, task) -> dict[str, dict]:
    """name -> {fn: designs [D, 2] -> eig [D], what it is, its sample budget}."""
    out: dict[str, dict] = {}
    for n, m in args.budgets:
        for upper, label in ((False, "spce"), (True, "snmc")):
            out[f"ours_{label}_N{n}_L{m}"] = {
                "fn": lambda d, n=n, m=m, upper=upper: likelihood_eig(task, d[:, None], n, m, upper=upper).eig,
                "library": "ours", "method": label, "N": n, "inner": m, "likelihood_evaluations": n * m}
        out[f"pyro_nmc_N{n}_M{m}"] = {
            "fn": lambda d, n=n, m=m: nmc_eig(pyro_model, d, ["y"], ["theta"], N=n, M=m),
            "library": "pyro", "method": "nmc_eig", "N": n, "inner": m, "likelihood_evaluations": n * m}
    for n, m in args.pyro_extra:
        out[f"pyro_nmc_N{n}_M{m}"] = {
            "fn": lambda d, n=n, m=m: nmc_eig(pyro_model, d, ["y"], ["theta"], N=n, M=m),
            "library": "pyro", "method": "nmc_eig", "N": n, "inner": m, "likelihood_evaluations": n * m}
    for steps in args.vi_steps:
        def marginal(d: torch.Tensor, steps: int = steps) -> torch.Tensor:
            pyro.clear_param_store()
            return marginal_eig(pyro_model, d, ["y"], ["theta"], num_samples=args.vi_samples, num_steps=steps,
                                guide=gaussian_marginal_guide, optim=pyro.optim.Adam({"lr": args.vi_lr}),
                                final_num_samples=args.vi_final_samples)
        out[f"pyro_marginal_gauss_steps{steps}"] = {
            "fn": marginal, "library": "pyro", "method": "marginal_eig (Gaussian q(y|d))", "steps": steps,
            "samples_per_step": args.vi_samples, "final_samples": args.vi_final_samples, "lr": args.vi_lr,
            "simulations": steps * args.vi_samples + args.vi_final_samples}
    return out


def _chunked_eig(task, designs: torch.Tensor, num_outer: int, num_inner: int, chunk: int, seed: int,
                 upper: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``likelihood_eig`` over chunks of ``chunk`` outer samples (it holds all ``D N L`` scores at
    once), chunk c seeded ``seed + c``; the mean and the standard error of all ``N`` terms, pooled."""
    means, variances = [], []
    for c in range(num_outer // chunk):
        torch.manual_seed(seed + c)
        part = likelihood_eig(task, designs[:, None], chunk, num_inner, upper=upper)
        means.append(part.eig)
        variances.append((part.stderr * chunk**0.5) ** 2)  # the chunk's sample variance (n - 1)
    means, variances = torch.stack(means), torch.stack(variances)
    mean = means.mean(0)
    total = ((chunk - 1) * variances + chunk * (means - mean) ** 2).sum(0) / (len(means) * chunk - 1)
    return mean, (total / (len(means) * chunk)).sqrt()


def reference(args: argparse.Namespace, task, designs: torch.Tensor) -> dict:
    """sPCE at large L; sNMC on the same draws (same seeds) for a bracket on a subset of outer samples."""
    out = {}
    with torch.no_grad():
        start = time.perf_counter()
        eig, stderr = _chunked_eig(task, designs, args.ref_outer, args.ref_inner, args.ref_chunk, args.seed)
        out.update(eig=eig.tolist(), stderr=stderr.tolist(), seconds=time.perf_counter() - start)
        print(f"reference sPCE N={args.ref_outer} L={args.ref_inner}: {out['seconds']:.1f} s", flush=True)
        if args.bracket_outer:
            bounds = [_chunked_eig(task, designs, args.bracket_outer, args.ref_inner, args.ref_chunk, 10**6 + args.seed,
                                   upper=upper)[0] for upper in (False, True)]
            out["bracket_snmc_minus_spce"] = (bounds[1] - bounds[0]).tolist()
    return out


def model_check(args: argparse.Namespace, task, designs: torch.Tensor, ref: torch.Tensor,
                ref_err: torch.Tensor) -> dict:
    """pyro's model against ours: log-likelihoods on random draws, and nmc_eig at a large budget."""
    torch.manual_seed(args.seed + 2)
    theta = task.prior.sample((1000,))
    design = designs[torch.randint(len(designs), (1000,))]
    y = task.simulate(theta, design[:, None])[:, 0]
    traced = pyro.poutine.trace(pyro.condition(pyro_model, data={"theta": theta, "y": y})).get_trace(design)
    ours = task.log_likelihood(theta, y[:, None], design[:, None])
    max_loglik_difference = float((traced.nodes["y"]["fn"].log_prob(y) - ours).abs().max())
    chunks, start = [], time.perf_counter()
    with torch.no_grad():
        for _ in range(args.check_outer // args.check_chunk):
            chunks.append(nmc_eig(pyro_model, designs, ["y"], ["theta"], N=args.check_chunk, M=args.check_inner))
    stacked = torch.stack(chunks)
    eig, stderr = stacked.mean(0), stacked.std(0) / len(chunks) ** 0.5
    z = (eig - ref) / (stderr**2 + ref_err**2).sqrt()
    return {"max_abs_log_likelihood_difference": max_loglik_difference, "nmc_N": args.check_outer,
            "nmc_M": args.check_inner, "nmc_eig": eig.tolist(), "nmc_stderr": stderr.tolist(),
            "nmc_minus_reference": (eig - ref).tolist(), "z": z.tolist(), "max_abs_z": float(z.abs().max()),
            "seconds": time.perf_counter() - start}


def score(fn: Callable, designs: torch.Tensor, ref: torch.Tensor, repeats: int) -> dict:
    fn(designs)  # warm-up, untimed
    errors, seconds = [], []
    for r in range(repeats):
        pyro.set_rng_seed(1000 + r)  # seeds torch (and python, numpy)
        start = time.perf_counter()
        eig = fn(designs)
        seconds.append(time.perf_counter() - start)
        errors.append(eig.detach() - ref)
    errors = torch.stack(errors)  # [R, D]
    return {"mean_abs_error": float(errors.abs().mean()), "bias": float(errors.mean()),
            "max_abs_error": float(errors.abs().max()), "rmse": float(errors.pow(2).mean().sqrt()),
            "mean_abs_error_per_repeat": errors.abs().mean(1).tolist(),
            "mean_error_per_design": errors.mean(0).tolist(),
            "median_seconds": statistics.median(seconds), "seconds": seconds}


def ratios(rows: dict, pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"pyro": p, "ours": o, "time_pyro_over_ours": rows[p]["median_seconds"] / rows[o]["median_seconds"],
             "error_pyro_over_ours": rows[p]["mean_abs_error"] / rows[o]["mean_abs_error"]} for p, o in pairs]


def _pair(text: str) -> tuple[int, int]:
    n, m = text.split("x")
    return int(n), int(m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-outer", type=int, default=2000)
    parser.add_argument("--ref-inner", type=int, default=100_000)
    parser.add_argument("--ref-chunk", type=int, default=100, help="outer samples per reference call (memory)")
    parser.add_argument("--bracket-outer", type=int, default=200,
                        help="outer samples of the sPCE/sNMC bracket (0: none)")
    parser.add_argument("--budgets", type=_pair, nargs="+", default=[(500, 500), (100, 10)],
                        help="NxM budgets run by ours (sPCE, sNMC) and pyro nmc_eig alike; 100x10 is nmc_eig's default")
    parser.add_argument("--pyro-extra", type=_pair, nargs="*", default=[(1000, 1000), (2000, 500)],
                        help="further nmc_eig budgets, compared with our first budget (these two: about its time)")
    parser.add_argument("--vi-steps", type=int, nargs="*", default=[250, 1000])
    parser.add_argument("--vi-samples", type=int, default=100)
    parser.add_argument("--vi-final-samples", type=int, default=10_000)
    parser.add_argument("--vi-lr", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--vi-repeats", type=int, default=5)
    parser.add_argument("--check-outer", type=int, default=10_000)
    parser.add_argument("--check-inner", type=int, default=10_000)
    parser.add_argument("--check-chunk", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write the results (the JSON printed last) to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = design_task("location_finding", 1)
    designs = torch.tensor(DESIGNS)
    start = time.perf_counter()
    ref = reference(args, task, designs)
    ref_eig, ref_err = torch.tensor(ref["eig"]), torch.tensor(ref["stderr"])
    check = model_check(args, task, designs, ref_eig, ref_err)
    print(json.dumps({k: v for k, v in check.items() if not isinstance(v, list)}), flush=True)
    rows = {}
    for name, spec in estimators(args, task).items():
        repeats = args.vi_repeats if "marginal" in name else args.repeats
        rows[name] = {k: v for k, v in spec.items() if k != "fn"} | {"repeats": repeats} | score(
            spec["fn"], designs, ref_eig, repeats)
        print(name, json.dumps({k: round(v, 4) for k, v in rows[name].items() if isinstance(v, float)}), flush=True)
    pairs = []
    for n, m in args.budgets:
        pairs += [(f"pyro_nmc_N{n}_M{m}", f"ours_snmc_N{n}_L{m}"), (f"pyro_nmc_N{n}_M{m}", f"ours_spce_N{n}_L{m}")]
    first = args.budgets[0]
    pairs += [(f"pyro_nmc_N{n}_M{m}", f"ours_spce_N{first[0]}_L{first[1]}") for n, m in args.pyro_extra]
    pairs += [(f"pyro_marginal_gauss_steps{s}", f"ours_spce_N{first[0]}_L{first[1]}") for s in args.vi_steps]
    results = {"environment": environment("cpu") | {"pyro-ppl": metadata.version("pyro-ppl")}, "settings": vars(args),
               "designs": DESIGNS, "reference": ref, "model_check": check, "estimators": rows,
               "ratios": ratios(rows, pairs), "total_seconds": time.perf_counter() - start}
    print(json.dumps(results, indent=1))
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
