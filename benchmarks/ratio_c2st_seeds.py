"""C2ST of our NRE-B and sbi 0.27's NRE_B on two_moons over several seeds, both sampled by the same SIR.

The main benchmark (ratio_vs_sbi.py) samples each network with its own library's
sampler, so its C2ST mixes estimator and sampler error. Here both trained
classifiers go through one plain sampling-importance-resampling routine
(200,000 prior proposals per observation), so the comparison is estimator
against estimator: same simulations, sizes (H=50, 2 blocks), K=10 atoms,
batch 200, lr 5e-4, patience 20; 10 observations per seed; C2ST against the
exact reference posterior.

Run:
    .venv/bin/python benchmarks/ratio_c2st_seeds.py
"""

import warnings

import torch
from sbi.inference import NRE_B
from sbi.neural_nets import classifier_nn

from sbi_core.diagnostics import c2st
from sbi_core.estimators.flows import NullTracker
from sbi_core.ratio import train_ratio_estimator
from sbi_core.seeding import derive_seed, seed_everything
from sbi_core.tasks import BUILTIN_TASKS

warnings.simplefilter("ignore")


def sir(logit_fn, prior, x_o, n_prop=200_000, n=1000):
    """n posterior samples for one observation by SIR from the prior."""
    theta = prior.sample((n_prop,))
    with torch.no_grad():
        logits = torch.cat([logit_fn(t, x_o.expand(len(t), -1)) for t in theta.split(50_000)]).reshape(-1)
    idx = torch.multinomial(torch.softmax(logits, 0), n, replacement=True)
    return theta[idx]


task = BUILTIN_TASKS["two_moons"]()
for seed in (0, 1, 2, 3):
    seed_everything(seed)
    theta = task.prior.sample((10000,))
    x = task.simulate(theta)
    xo = task.simulate(task.prior.sample((10,)))
    # sbi's NRE_B settings below (10 atoms, patience 20), not NRE-B's own defaults: estimator against estimator.
    ours, _ = train_ratio_estimator(theta, x, "nre_b", {"num_atoms": 10, "patience": 20}, seed=derive_seed(seed, "ours"),
                                    show_progress_bar=False)
    seed_everything(derive_seed(seed, "sbi"))
    trainer = NRE_B(
        prior=task.prior,
        classifier=classifier_nn("resnet", hidden_features=50, num_blocks=2),
        tracker=NullTracker(),
        show_progress_bars=False,
    )
    sbi_net = trainer.append_simulations(theta, x).train(
        num_atoms=10, training_batch_size=200, learning_rate=5e-4, stop_after_epochs=20
    )
    sbi_net.eval()
    scores = {"ours": [], "sbi": []}
    for m in range(10):
        ref = task.reference_posterior(xo[m], 1000)
        # Reference first, as sbibm's protocol does: its mean and std z-score both sets.
        scores["ours"].append(c2st(ref, sir(lambda t, xx: ours(t, xx), task.prior, xo[m : m + 1]), seed=0))
        scores["sbi"].append(c2st(ref, sir(lambda t, xx: sbi_net(t, xx), task.prior, xo[m : m + 1]), seed=0))
    num_samples = min(min(r.num_samples_a, r.num_samples_b) for v in scores.values() for r in v)
    print(seed, {k: round(sum(r.accuracy for r in v) / len(v), 3) for k, v in scores.items()},
          f"({num_samples} samples per set)", flush=True)
