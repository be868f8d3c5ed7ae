"""Benchmark: how much a C2ST moves with the classifier's seed alone, ours against sbi's (sklearn's MLP).

One sample pair of ``benchmarks/c2st_vs_sbi.py`` (d = 10, delta = 0.5, 10,000 + 10,000), the C2ST
rerun with other seeds (initialisation, shuffles and folds; the samples fixed). Compare the spread
with the binomial standard error the C2ST reports (0.0035 here).

Run (one process per library, at once):
    OMP_NUM_THREADS=1 python benchmarks/c2st_seed_scatter.py sbi 2 3
    OMP_NUM_THREADS=1 python benchmarks/c2st_seed_scatter.py ours 2 3 4 5
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from c2st_vs_sbi import _pair, _sbi_c2st  # noqa: E402

from sbi_core.diagnostics import c2st_many  # noqa: E402


def main() -> None:
    which, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
    if which not in ("ours", "sbi") or not seeds:
        raise SystemExit("usage: c2st_seed_scatter.py ours|sbi SEED [SEED ...]")
    reference, estimate = _pair(10, 0.5, 10_000, 0)
    for seed in seeds:
        start = time.perf_counter()
        if which == "sbi":
            accuracy = _sbi_c2st(reference, estimate, seed=seed)
        else:
            accuracy = c2st_many(reference[None], estimate[None], seed=seed)[0].accuracy
        print(which, seed, round(accuracy, 4), f"{time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
