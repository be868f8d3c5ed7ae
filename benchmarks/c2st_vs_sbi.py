"""Benchmark: our torch C2ST against sbi 0.27's ``c2st`` with the benchmark's MLP, on the same samples.

Both run the published protocol (sbibm's ``c2st``: z-scoring by the reference set,
an MLP ``d -> 10 d -> 10 d -> 1`` trained by Adam until sklearn's training-loss rule
stops it, shuffled 5-fold cross-validation); sbi runs sklearn's ``MLPClassifier``
fold after fold, ours trains every fold's network as one batch
(:func:`sbi_core.diagnostics.c2st_many`). Sample pairs: the reference N(0, I_d)
against N(delta e_1, diag(1, ..., 1, (1 + delta / 2)^2)), 10,000 + 10,000 as
published; delta = 0.1 is a good posterior (the common case, and the slowest: the
classifier overfits noise for hundreds of epochs), delta = 0.5 a poor one. One
row per case, in one run, the accuracies side by side: two estimates of one
number, which should agree within their standard errors. "many" rows run
``--tests`` C2STs at once (ours: one ``c2st_many`` call; sbi: one call each), as
for one method's observations.

Ratios are sbi / ours (above 1: we are faster).

Run:
    OMP_NUM_THREADS=1 python benchmarks/c2st_vs_sbi.py --out benchmarks/out/c2st_vs_sbi.json
Smoke test:
    python benchmarks/c2st_vs_sbi.py --num-samples 300 --dims 2 --deltas 0.5 --tests 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import write_report  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from sbi_core.diagnostics import c2st_many  # noqa: E402


def _pair(dim: int, delta: float, num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(num, dim)).astype(np.float32)
    estimate = rng.normal(size=(num, dim)).astype(np.float32)
    estimate[:, 0] += delta
    estimate[:, -1] *= 1 + delta / 2
    return reference, estimate


def _sbi_c2st(reference: np.ndarray, estimate: np.ndarray, seed: int) -> float:
    from sbi.utils.metrics import c2st

    dim = reference.shape[1]
    mlp = {"activation": "relu", "hidden_layer_sizes": (10 * dim, 10 * dim), "max_iter": 10000, "solver": "adam"}
    with threadpool_limits(limits=1, user_api="blas"):
        return float(c2st(torch.from_numpy(reference), torch.from_numpy(estimate), seed=seed, classifier="mlp",
                          classifier_kwargs=mlp))


def _row(dim: int, delta: float, num: int, tests: int, device: str) -> dict:
    pairs = [_pair(dim, delta, num, seed) for seed in range(tests)]
    start = time.perf_counter()
    ours = c2st_many(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), seed=1, device=device)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [_sbi_c2st(reference, estimate, seed=1) for reference, estimate in pairs]
    sbi_seconds = time.perf_counter() - start
    pulls = [(o.accuracy - t) / (np.sqrt(2) * o.stderr) for o, t in zip(ours, theirs)]
    row = {
        "dim": dim, "delta": delta, "num_samples": num, "tests": tests, "device": device,
        "ours_seconds": ours_seconds, "sbi_seconds": sbi_seconds, "speedup": sbi_seconds / ours_seconds,
        "ours_accuracy": [o.accuracy for o in ours], "sbi_accuracy": theirs,
        "stderr": [o.stderr for o in ours], "difference_in_combined_stderr": pulls,
    }
    print(f"d={dim} delta={delta} n={num} tests={tests}: ours {ours_seconds:.1f} s, sbi {sbi_seconds:.1f} s "
          f"(x{row['speedup']:.1f}); accuracy ours {np.mean(row['ours_accuracy']):.4f}, sbi "
          f"{np.mean(theirs):.4f}, largest |difference| {max(map(abs, pulls)):.2f} combined stderr", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=10_000, help="samples per set (published: 10,000)")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--deltas", type=float, nargs="+", default=[0.1, 0.5])
    parser.add_argument("--tests", type=int, default=5,
                        help="C2STs at once in the 'many' row (the smallest d, the first delta; 1: no such row)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="JSON file for the rows (also printed)")
    args = parser.parse_args()

    rows = [_row(dim, delta, args.num_samples, 1, args.device) for dim in args.dims for delta in args.deltas]
    if args.tests > 1:
        rows.append(_row(min(args.dims), args.deltas[0], args.num_samples, args.tests, args.device))
    write_report(rows, vars(args), args.device, args.out)


if __name__ == "__main__":
    main()
