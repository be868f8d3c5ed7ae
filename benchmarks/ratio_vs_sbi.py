"""Benchmark: our vectorized NRE-B against sbi 0.27's ``NRE_B`` on two moons, same data, same sizes.

Both train the same architecture (sbi's ResNet classifier: z-scored inputs, a
linear layer to H units, residual blocks, a linear read-out) with the same
simulations, batch size, contrastive atoms, learning rate, validation split and
early stopping. Measured, in one run on one device:

(a) training time per epoch (total time / epochs trained, validation included),
    and three bare PyTorch loops over the same split and batch size, no
    validation or early stopping: our network on the atoms' pairs only (what
    our trainer does), our network on sbi-style repeated pairs (x repeated K
    times through the whole network), and sbi's own classifier on those pairs;
(b) time for ``--num-samples`` posterior samples for each of
    ``--num-observations`` observations: ours by SIR and by batched MCMC (all
    observations in one call), sbi by its default for NRE, vectorized slice
    sampling (``sample_batched``, ``--num-chains`` chains per observation), and
    by its importance-sampling SIR, which has no batched form (a loop over x);
(c) SBC on ``--sbc-simulations`` test simulations x ``--num-samples`` samples:
    ours in one batched call; sbi on ``--sbi-sbc-subset`` of them, its time
    extrapolated linearly to all (marked so in the table);
(d) C2ST of each posterior against the exact two-moons reference posterior,
    averaged over the first ``--c2st-observations`` observations.

Ratios are sbi / ours: above 1 means we are faster (times) or, for C2ST, that
sbi's accuracy is further from the ideal 0.5.

Run (full size):
    python benchmarks/ratio_vs_sbi.py --device cuda --out results/benchmarks/ratio_vs_sbi.json
Smoke test:
    python benchmarks/ratio_vs_sbi.py --num-simulations 500 --num-observations 3 \\
        --num-samples 50 --sbc-simulations 5 --max-epochs 3 --out /tmp/ratio_vs_sbi.json

References:
    | On Contrastive Learning for Likelihood-free Inference (Durkan et al., 2020)
    | https://arxiv.org/abs/2002.03712
    | sbi reloaded: a toolkit for simulation-based inference workflows (Boelts et al., 2024)
    | https://arxiv.org/abs/2411.17337
"""

from __future__ import annotations

import argparse
import copy
import math
import time
import warnings
from typing import Any

import numpy as np
import torch
from sbi.inference import NRE_B
from sbi.inference.posteriors.posterior_parameters import MCMCPosteriorParameters
from sbi.neural_nets import classifier_nn
from sbi.utils import BoxUniform
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor, nn

from bench_common import environment, timer

from sbi_core.estimators.flows import NullTracker
from sbi_core.diagnostics import c2st, sbc_ranks, sbc_uniformity
from sbi_core.io import write_json
from sbi_core.ratio import NREBLoss, RatioEstimator, draw_atoms, train_ratio_estimator
from sbi_core.sampling import LowEffectiveSampleSizeWarning, RatioPosterior
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import BUILTIN_TASKS

__all__ = ["main", "parse_arguments"]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line (sizes, network, samplers, device, output file)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--num-simulations", type=int, default=10_000, help="training simulations")
    sizes.add_argument("--num-observations", type=int, default=100, help="observations sampled in (b)")
    sizes.add_argument("--num-samples", type=int, default=1000, help="posterior samples per observation")
    sizes.add_argument("--sbc-simulations", type=int, default=1000, help="test simulations for SBC (c)")
    sizes.add_argument("--sbi-sbc-subset", type=int, default=100,
                       help="sbi samples only this many SBC observations; its time is extrapolated")
    sizes.add_argument("--c2st-observations", type=int, default=10, help="observations compared by C2ST (d)")
    sizes.add_argument("--c2st-proposals", type=int, default=1_000_000,
                       help="prior proposals of our accurate SIR, run on the C2ST observations only (d)")
    sizes.add_argument("--c2st-jobs", type=int, default=1,
                       help="C2STs computed in parallel processes (each on one BLAS thread; same numbers)")
    training = parser.add_argument_group("training (both libraries)")
    training.add_argument("--batch-size", type=int, default=200)
    training.add_argument("--num-atoms", type=int, default=10, help="contrastive atoms K")
    training.add_argument("--hidden-features", type=int, default=50)
    training.add_argument("--num-blocks", type=int, default=2)
    training.add_argument("--learning-rate", type=float, default=5e-4)
    training.add_argument("--validation-fraction", type=float, default=0.1)
    training.add_argument("--patience", type=int, default=20)
    training.add_argument("--max-epochs", type=int, default=500)
    training.add_argument("--bare-epochs", type=int, default=3, help="epochs timed for each bare loop")
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--num-proposals", type=int, default=None,
                          help="our SIR's prior proposals (default 100 x num-samples)")
    sampling.add_argument("--num-chains", type=int, default=20, help="MCMC chains per observation (both)")
    sampling.add_argument("--warmup-steps", type=int, default=100, help="MCMC warm-up steps (both)")
    sampling.add_argument("--thin", type=int, default=5, help="our random-walk MCMC's thinning (sbi's slice: 1)")
    sampling.add_argument("--sbc-sampler", choices=("sir", "mcmc"), default="sir", help="our sampler for SBC")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/benchmarks/ratio_vs_sbi.json", help="JSON results file")
    args = parser.parse_args(argv)
    if args.num_proposals is None:
        args.num_proposals = 100 * args.num_samples
    args.sbi_sbc_subset = min(args.sbi_sbc_subset, args.sbc_simulations)
    args.c2st_observations = min(args.c2st_observations, args.num_observations)
    return args


def _bare_loop(
    args: argparse.Namespace, theta: Tensor, x: Tensor, pairs: str, network: nn.Module
) -> float:
    """Seconds per epoch of a plain Adam loop on NRE-B, no validation or early stopping.

    ``pairs="atoms"`` evaluates our network on ``theta[atoms]`` with each x once;
    ``"repeated"`` forms sbi's ``[B K]`` pair rows (x repeated K times) and calls
    the network on them, as sbi's trainer does.
    """
    device = args.device
    network = network.to(device).train()
    theta, x = theta.to(device), x.to(device)
    loss = NREBLoss(args.num_atoms)
    optimizer = torch.optim.Adam(network.parameters(), lr=args.learning_rate)
    generator = torch.Generator().manual_seed(derive_seed(args.seed, "bare", pairs))
    times: dict[str, float] = {}
    with timer(device, times, "total"):
        for _ in range(args.bare_epochs):
            for batch in torch.randperm(len(theta), generator=generator).split(args.batch_size):
                if len(batch) < args.num_atoms:
                    continue
                atoms = draw_atoms(len(batch), args.num_atoms, generator).to(device)
                batch = batch.to(device)
                theta_b, x_b = theta[batch], x[batch]
                if pairs == "atoms":
                    logits = network.per_observation(theta_b[atoms], x_b)
                else:
                    repeated_theta = theta_b[atoms].reshape(-1, theta.shape[1])
                    repeated_x = x_b.repeat_interleave(args.num_atoms, dim=0)
                    logits = network(repeated_theta, repeated_x).reshape(len(batch), args.num_atoms)
                value = loss.atom_loss(logits)
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                nn.utils.clip_grad_norm_(network.parameters(), 5.0)
                optimizer.step()
    return times["total"] / args.bare_epochs


def _sbc_summary(theta: Tensor, samples: Tensor) -> dict[str, Any]:
    ranks = sbc_ranks(theta.cpu(), samples.cpu())
    uniformity = sbc_uniformity(ranks, samples.shape[1])
    return {key: uniformity[key] for key in ("min_ks_pvalue", "min_chi2_pvalue", "num_simulations")}


def _one_c2st(reference: Tensor, samples: Tensor, seed: int):
    with warnings.catch_warnings():
        # Should sklearn's MLP reach its iteration cap, the accuracy is still the C2ST.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return c2st(reference, samples, seed=seed)


def _mean_c2sts(
    named_samples: dict[str, Tensor], references: list[Tensor], seed: int, jobs: int
) -> dict[str, dict[str, float | int]]:
    """For each sample set: the mean C2ST accuracy over the observations, reference first (sbibm's
    protocol), and the samples per set used. ``jobs`` > 1 runs the C2STs in that many processes
    (each C2ST is seeded and on one BLAS thread, so the numbers do not change)."""
    pairs = [(name, m) for name in named_samples for m in range(len(references))]
    arguments = [(references[m], named_samples[name][m].cpu(), seed) for name, m in pairs]
    if jobs > 1:
        from joblib import Parallel, delayed

        fits = Parallel(n_jobs=jobs)(delayed(_one_c2st)(*a) for a in arguments)
    else:
        fits = [_one_c2st(*a) for a in arguments]
    results: dict[str, list] = {name: [] for name in named_samples}
    for (name, _), fit in zip(pairs, fits):
        results[name].append(fit)
    return {
        name: {"accuracy": float(np.mean([r.accuracy for r in rs])),
               "num_samples": min(min(r.num_samples_a, r.num_samples_b) for r in rs)}
        for name, rs in results.items()
    }


def _progress(phase: str) -> None:
    """One line per phase, so that a log shows where a run stood if it was stopped."""
    print(f"[{time.strftime('%H:%M:%S')}] {phase}", flush=True)


def _warm_up(device: str) -> None:
    """Pays one-time costs before any timing: torch imports torch._dynamo (about 1 s) on the
    first optimizer step of a process, and CUDA creates its context on first use."""
    theta = torch.rand(64, 2)
    train_ratio_estimator(theta, theta, "nre_b", {"max_epochs": 1, "batch_size": 32, "num_atoms": 2,
                                                   "hidden_features": 8}, device=device, seed=0,
                          show_progress_bar=False)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints the table, writes the JSON and returns the results."""
    args = parse_arguments(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = args.device
    _warm_up(device)
    task = BUILTIN_TASKS["two_moons"]()
    prior = task.prior  # on the CPU: our samplers evaluate priors there
    prior_device = BoxUniform(-torch.ones(2, device=device), torch.ones(2, device=device))

    seed_everything(args.seed)
    theta = task.prior.sample((args.num_simulations,))
    x = task.simulate(theta)
    theta_observed = task.prior.sample((args.num_observations,))
    x_observed = task.simulate(theta_observed)
    theta_test = task.prior.sample((args.sbc_simulations,))
    x_test = task.simulate(theta_test)
    num_training = args.num_simulations - math.ceil(args.validation_fraction * args.num_simulations)

    times: dict[str, float] = {}
    results: dict[str, Any] = {"arguments": vars(args)}

    _progress("(a) training")
    # (a) training
    settings = {
        "batch_size": args.batch_size, "learning_rate": args.learning_rate, "max_epochs": args.max_epochs,
        "patience": args.patience, "validation_fraction": args.validation_fraction,
        "hidden_features": args.hidden_features, "num_blocks": args.num_blocks, "num_atoms": args.num_atoms,
    }
    with timer(device, times, "ours_training"):
        network, history = train_ratio_estimator(
            theta, x, "nre_b", settings, device=device, seed=derive_seed(args.seed, "ours"), show_progress_bar=False
        )
    seed_everything(derive_seed(args.seed, "sbi"))
    builder = classifier_nn("resnet", hidden_features=args.hidden_features, num_blocks=args.num_blocks)
    trainer = NRE_B(prior=prior_device, classifier=builder, device=device, tracker=NullTracker(),
                    show_progress_bars=False)
    trainer.append_simulations(theta, x)
    with timer(device, times, "sbi_training"):
        sbi_estimator = trainer.train(
            num_atoms=args.num_atoms, training_batch_size=args.batch_size, learning_rate=args.learning_rate,
            validation_fraction=args.validation_fraction, stop_after_epochs=args.patience,
            max_num_epochs=args.max_epochs,
        )
    sbi_epochs = int(trainer.summary["epochs_trained"][-1])
    epoch = {
        "ours": times["ours_training"] / history["epochs_trained"],
        "sbi": times["sbi_training"] / sbi_epochs,
    }
    theta_train, x_train = theta[:num_training], x[:num_training]
    torch.manual_seed(derive_seed(args.seed, "bare"))
    ours_fresh = RatioEstimator(2, [2], args.hidden_features, args.num_blocks)
    ours_fresh.fit_standardization(theta_train, x_train)
    ours_repeated = copy.deepcopy(ours_fresh)  # the same initial weights for both bare loops
    epoch["bare_ours_atoms"] = _bare_loop(args, theta_train, x_train, "atoms", ours_fresh)
    epoch["bare_ours_repeated"] = _bare_loop(args, theta_train, x_train, "repeated", ours_repeated)
    epoch["bare_sbi_network"] = _bare_loop(args, theta_train, x_train, "repeated", builder(theta_train, x_train))
    results["training"] = {
        "seconds_per_epoch": epoch,
        "epochs_trained": {"ours": history["epochs_trained"], "sbi": sbi_epochs},
        "best_validation_loss": {"ours": history["best_validation_loss"],
                                 "sbi": float(trainer.summary["best_validation_loss"][-1])},
        "seconds_total": {"ours": times["ours_training"], "sbi": times["sbi_training"]},
        # Where each trained network's weights are: both must be on --device.
        "network_device": {"ours": str(next(network.parameters()).device),
                           "sbi": str(next(sbi_estimator.parameters()).device)},
    }

    _progress("(b) sampling")
    # (b) sampling, M observations x S samples
    posterior = RatioPosterior(network, prior)
    sir_options = {"num_proposals": args.num_proposals}
    mcmc_options = {"num_chains": args.num_chains, "warmup_steps": args.warmup_steps, "thin": args.thin}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowEffectiveSampleSizeWarning)
        with timer(device, times, "ours_sir"):
            ours_sir = posterior.sample(x_observed, args.num_samples, "sir", seed=args.seed, **sir_options)
    low_ess = [str(w.message) for w in caught if issubclass(w.category, LowEffectiveSampleSizeWarning)]
    with timer(device, times, "ours_mcmc"):
        ours_mcmc = posterior.sample(x_observed, args.num_samples, "mcmc", seed=args.seed, **mcmc_options)
    sbi_mcmc_posterior = trainer.build_posterior(
        sbi_estimator, prior=prior_device,
        posterior_parameters=MCMCPosteriorParameters(
            num_chains=args.num_chains, warmup_steps=args.warmup_steps, thin=1
        ),
    )
    seed_everything(derive_seed(args.seed, "sbi", "sample"))
    with timer(device, times, "sbi_mcmc"):
        sbi_mcmc = sbi_mcmc_posterior.sample_batched(
            (args.num_samples,), x=x_observed.to(device), show_progress_bars=False
        ).transpose(0, 1)
    sbi_sir_posterior = trainer.build_posterior(sbi_estimator, prior=prior_device, sample_with="importance")
    with timer(device, times, "sbi_sir_loop"):
        sbi_sir = torch.stack([
            sbi_sir_posterior.sample((args.num_samples,), x=x_o[None].to(device), show_progress_bars=False)
            for x_o in x_observed
        ])
    results["sampling"] = {
        "seconds": {key: times[key] for key in ("ours_sir", "ours_mcmc", "sbi_mcmc", "sbi_sir_loop")},
        "ours_sir_low_ess_warnings": low_ess,
    }

    _progress("(d) C2ST")
    # (d) C2ST against the exact reference posterior
    references = [task.reference_posterior(x_observed[m], args.num_samples)
                  for m in range(args.c2st_observations)]
    c2st_seed = derive_seed(args.seed, "c2st")
    # The estimator's own accuracy, with the sampler's error made small: SIR from many proposals.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowEffectiveSampleSizeWarning)
        ours_sir_accurate = posterior.sample(
            x_observed[: args.c2st_observations], args.num_samples, "sir", seed=args.seed,
            num_proposals=args.c2st_proposals,
        )
    c2st_results = _mean_c2sts(
        {"ours_sir": ours_sir, "ours_mcmc": ours_mcmc, "ours_sir_accurate": ours_sir_accurate,
         "sbi_mcmc": sbi_mcmc, "sbi_sir": sbi_sir},
        references, c2st_seed, args.c2st_jobs,
    )
    results["c2st"] = {name: r["accuracy"] for name, r in c2st_results.items()}
    results["c2st_num_samples"] = min(r["num_samples"] for r in c2st_results.values())

    _progress("(c) SBC")
    # (c) SBC
    sbc_options = sir_options if args.sbc_sampler == "sir" else mcmc_options
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowEffectiveSampleSizeWarning)
        with timer(device, times, "ours_sbc"):
            ours_sbc = posterior.sample(x_test, args.num_samples, args.sbc_sampler, seed=args.seed, **sbc_options)
    seed_everything(derive_seed(args.seed, "sbi", "sbc"))
    with timer(device, times, "sbi_sbc_subset"):
        sbi_sbc = sbi_mcmc_posterior.sample_batched(
            (args.num_samples,), x=x_test[: args.sbi_sbc_subset].to(device), show_progress_bars=False
        ).transpose(0, 1)
    results["sbc"] = {
        "seconds": {
            "ours": times["ours_sbc"],
            "sbi_subset": times["sbi_sbc_subset"],
            "sbi_extrapolated": times["sbi_sbc_subset"] * args.sbc_simulations / args.sbi_sbc_subset,
        },
        "ours_sampler": args.sbc_sampler,
        "ours": _sbc_summary(theta_test, ours_sbc),
        "ours_subset": _sbc_summary(theta_test[: args.sbi_sbc_subset], ours_sbc[: args.sbi_sbc_subset]),
        "sbi_subset": _sbc_summary(theta_test[: args.sbi_sbc_subset], sbi_sbc),
    }

    _progress("done")
    results["environment"] = environment(device)
    _print_table(args, results)
    write_json(args.out, results)
    print(f"\nwrote {args.out}")
    return results


def _print_table(args: argparse.Namespace, results: dict[str, Any]) -> None:
    def row(label: str, ours: float, sbi: float, unit: str, note: str = "") -> None:
        ratio = sbi / ours if ours > 0 else float("nan")
        print(f"{label:<46} {ours:>12.4g} {sbi:>12.4g} {ratio:>8.2f}  {unit} {note}".rstrip())

    epoch = results["training"]["seconds_per_epoch"]
    sampling = results["sampling"]["seconds"]
    sbc = results["sbc"]["seconds"]
    c2st_values = results["c2st"]
    env = results["environment"]
    print(f"\ntwo_moons, {args.num_simulations} simulations, H={args.hidden_features}, "
          f"{args.num_blocks} blocks, K={args.num_atoms} atoms, batch {args.batch_size}, "
          f"device {env['device']} ({env['device_name']}, {env['torch_threads']} threads)")
    print(f"{'':<46} {'ours':>12} {'sbi':>12} {'sbi/ours':>8}")
    row("(a) training, s/epoch", epoch["ours"], epoch["sbi"], "s",
        f"({results['training']['epochs_trained']['ours']} vs {results['training']['epochs_trained']['sbi']} epochs)")
    row("    bare loop, ours: atoms vs sbi net: repeated", epoch["bare_ours_atoms"], epoch["bare_sbi_network"], "s")
    row("    bare loop, ours: atoms vs ours: repeated", epoch["bare_ours_atoms"], epoch["bare_ours_repeated"], "s")
    row("    our trainer vs bare loop (ours, atoms)", epoch["bare_ours_atoms"], epoch["ours"], "s",
        "(ratio = trainer overhead incl. validation)")
    label = f"{args.num_samples} samples x {args.num_observations} obs"
    row(f"(b) {label}: SIR vs sbi MCMC", sampling["ours_sir"], sampling["sbi_mcmc"], "s")
    row(f"    {label}: MCMC vs sbi MCMC", sampling["ours_mcmc"], sampling["sbi_mcmc"], "s")
    row(f"    {label}: SIR vs sbi SIR (loop)", sampling["ours_sir"], sampling["sbi_sir_loop"], "s")
    row(f"(c) SBC {args.sbc_simulations} x {args.num_samples} ({results['sbc']['ours_sampler']} vs sbi MCMC)",
        sbc["ours"], sbc["sbi_extrapolated"], "s",
        f"(sbi extrapolated from {args.sbi_sbc_subset} sims, {sbc['sbi_subset']:.3g} s)")
    print(f"    SBC min KS p-value: ours {results['sbc']['ours']['min_ks_pvalue']:.3g} (all), "
          f"ours {results['sbc']['ours_subset']['min_ks_pvalue']:.3g} (subset), "
          f"sbi {results['sbc']['sbi_subset']['min_ks_pvalue']:.3g} (subset)")
    for ours_name, sbi_name in (("ours_sir", "sbi_mcmc"), ("ours_mcmc", "sbi_mcmc"),
                                ("ours_sir_accurate", "sbi_mcmc"), ("ours_sir", "sbi_sir")):
        ours, sbi = c2st_values[ours_name], c2st_values[sbi_name]
        row(f"(d) C2ST vs reference: {ours_name} vs {sbi_name}", ours, sbi, "acc",
            f"(ratio of distance from 0.5: {(sbi - 0.5) / max(ours - 0.5, 1e-9):.2f}; "
            f"{results['c2st_num_samples']} samples per set)")
    if results["sampling"]["ours_sir_low_ess_warnings"]:
        print("note: our SIR warned of a low effective sample size; raise --num-proposals")


if __name__ == "__main__":
    main()
