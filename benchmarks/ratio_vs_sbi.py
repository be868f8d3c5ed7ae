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
    ``--num-observations`` observations, for every sampler, with (d) its C2ST beside
    it: ours at the workflow's defaults (batched MCMC with jumps; SIR that grows its
    proposals), all observations in one call; sbi at its defaults for NRE
    (vectorized slice sampling, 20 chains, 200 warm-up steps) called per observation
    as its tutorials do and batched (``sample_batched``), and at its fastest option,
    importance sampling, which has no batched form (a loop over x), at its default 32
    proposals per sample and at ``--sbi-oversampling``, where its C2ST nears ours;
(c) SBC on ``--sbc-simulations`` test simulations x ``--num-samples`` samples,
    every sampler: ours in one batched call; sbi on ``--sbi-sbc-subset`` of them, its
    time extrapolated linearly to all (marked so in the table); the SBC p-values are
    compared on that subset;
(d) C2ST (our torch C2ST, the benchmark protocol) of each sampler's posterior against
    the exact two-moons reference, mean ± standard error over the first
    ``--c2st-observations`` observations; unbatched samplers run on those only, and
    their time is extrapolated to all.

Times are given as multiples of our MCMC's: below 1 is faster than ours.

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
from sbi.neural_nets import classifier_nn
from sbi.utils import BoxUniform
from torch import Tensor, nn

from bench_common import environment, timer

from sbi_core.estimators.flows import NullTracker
from sbi_core.diagnostics import c2st_many, sbc_ranks, sbc_uniformity
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
                       help="sbi samples only this many SBC observations (its time is extrapolated); "
                            "SBC p-values are compared on them")
    sizes.add_argument("--c2st-observations", type=int, default=10, help="observations compared by C2ST (d)")
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
    parser.add_argument("--sbi-oversampling", type=int, default=1024,
                        help="prior proposals per sample of sbi's importance sampling in its row at equal C2ST")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/benchmarks/ratio_vs_sbi.json", help="JSON results file")
    args = parser.parse_args(argv)
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


def _samplers(
    args: argparse.Namespace, network: nn.Module, prior: Any, trainer: Any, sbi_estimator: nn.Module, prior_device: Any
) -> dict[str, tuple[Any, bool]]:
    """Every sampler compared: ``name -> (sample(x [M, 2]) -> [M, S, 2], batched)``.

    Ours at the workflow's defaults (batched MCMC: 100 chains, 100 warm-up steps, thin
    3 d, a jump every 5 steps; SIR growing its prior proposals until the ESS reaches S),
    all observations in one call. sbi 0.27 at its defaults for NRE (``build_posterior``:
    vectorized slice sampling, 20 chains, 200 warm-up steps), both as a new user calls it
    (``sample`` per observation) and batched (``sample_batched``), and at its fastest
    option, importance sampling (``sample_with="importance"``: SIR with 32 prior
    proposals per sample), which has no batched form, and the same with
    ``--sbi-oversampling`` proposals per sample, which brings its C2ST near ours (the
    comparison at equal C2ST). Unbatched samplers run on the C2ST observations only and
    their time is extrapolated.
    """
    device, num_samples = args.device, args.num_samples
    ours = RatioPosterior(network, prior)
    mcmc = trainer.build_posterior(sbi_estimator, prior=prior_device)
    importance = trainer.build_posterior(sbi_estimator, prior=prior_device, sample_with="importance")

    def loop(posterior: Any, **options: Any) -> Any:
        return lambda x: torch.stack([
            posterior.sample((num_samples,), x=x_o[None].to(device), show_progress_bars=False, **options) for x_o in x
        ])

    thin = 3 * 2
    return {
        "ours, MCMC (default)": (lambda x: ours.sample(x, num_samples, "mcmc", seed=args.seed, num_chains=100,
                                                       warmup_steps=100, thin=thin), True),
        "ours, SIR (default)": (lambda x: ours.sample(x, num_samples, "sir", seed=args.seed), True),
        "sbi, MCMC (defaults), sample per observation": (loop(mcmc), False),
        "sbi, MCMC (defaults), sample_batched": (
            lambda x: mcmc.sample_batched((num_samples,), x=x.to(device), show_progress_bars=False).transpose(0, 1),
            True),
        "sbi, importance sampling (fastest)": (loop(importance), False),
        f"sbi, importance sampling, {args.sbi_oversampling} proposals per sample": (
            loop(importance, oversampling_factor=args.sbi_oversampling), False),
    }


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

    _progress("(b) sampling and (d) C2ST")
    # (b) M observations x S samples, every sampler; (d) each one's C2ST on the first observations
    samplers = _samplers(args, network, prior, trainer, sbi_estimator, prior_device)
    references = torch.stack([task.reference_posterior(x_observed[m], args.num_samples)
                              for m in range(args.c2st_observations)])
    rows = {}
    for name, (sample, batched) in samplers.items():
        observations = x_observed if batched else x_observed[: args.c2st_observations]
        seed_everything(derive_seed(args.seed, "sample", name))
        seconds: dict[str, float] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowEffectiveSampleSizeWarning)
            with timer(device, seconds, "sample"):
                samples = sample(observations)
        tests = c2st_many(references, samples[: args.c2st_observations].cpu(), seed=derive_seed(args.seed, "c2st"))
        accuracy = [t.accuracy for t in tests]
        rows[name] = {
            "seconds": seconds["sample"] * len(x_observed) / len(observations),
            "extrapolated_from": None if batched else len(observations),
            "c2st_mean": float(np.mean(accuracy)),
            "c2st_sem": float(np.std(accuracy, ddof=1) / np.sqrt(len(accuracy))) if len(accuracy) > 1 else None,
            "c2st": accuracy,
        }
        _progress(f"    {name}: {rows[name]['seconds']:.3g} s, C2ST {rows[name]['c2st_mean']:.3f}")
    results["sampling"] = rows
    results["c2st_num_samples"] = args.num_samples

    _progress("(c) SBC")
    # (c) SBC on the test simulations: every batched sampler on all, the others on a subset
    sbc = {}
    for name, (sample, batched) in samplers.items():
        subset = args.sbc_simulations if batched else args.sbi_sbc_subset
        if "sbi" in name and batched:
            subset = args.sbi_sbc_subset  # sbi's batched MCMC too: minutes per hundred
        seed_everything(derive_seed(args.seed, "sbc", name))
        seconds = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowEffectiveSampleSizeWarning)
            with timer(device, seconds, "sbc"):
                samples = sample(x_test[:subset])
        sbc[name] = {
            "seconds": seconds["sbc"] * args.sbc_simulations / subset,
            "extrapolated_from": None if subset == args.sbc_simulations else subset,
            "subset": _sbc_summary(theta_test[: args.sbi_sbc_subset], samples[: args.sbi_sbc_subset]),
        }
    results["sbc"] = sbc

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
    print(f"\n(b) {args.num_samples} samples x {args.num_observations} observations; (d) C2ST (ours, torch, "
          f"the benchmark protocol) against the exact posterior, mean of {args.c2st_observations} observations")
    print(f"{'sampler':<48} {'s':>9} {'vs ours MCMC':>13} {'C2ST':>14}")
    sampling = results["sampling"]
    base = sampling["ours, MCMC (default)"]["seconds"]
    for name, r in sampling.items():
        note = f"  (extrapolated from {r['extrapolated_from']})" if r["extrapolated_from"] else ""
        print(f"{name:<48} {r['seconds']:>9.3g} {r['seconds'] / base:>12.1f}x "
              f"{r['c2st_mean']:>7.3f} ± {r['c2st_sem'] if r['c2st_sem'] is not None else float('nan'):.3f}{note}")
    print(f"\n(c) SBC, {args.sbc_simulations} test simulations x {args.num_samples} samples "
          f"(min KS p-value on the first {args.sbi_sbc_subset})")
    base = results["sbc"]["ours, MCMC (default)"]["seconds"]
    for name, r in results["sbc"].items():
        note = f"  (extrapolated from {r['extrapolated_from']})" if r["extrapolated_from"] else ""
        print(f"{name:<48} {r['seconds']:>9.3g} {r['seconds'] / base:>12.1f}x "
              f"p {r['subset']['min_ks_pvalue']:.2g}, C2ST {sampling[name]['c2st_mean']:.3f}{note}")

if __name__ == "__main__":
    main()
