"""The vectorized neural-ratio core: a classifier with a separable first layer, its losses, its training.

One all-pairs logit matrix ``f(theta_i, x_j)`` serves every loss (NRE-A,
contrastive NRE-B, NRE-C, balanced BNRE) and every consumer (posterior sampling
for many observations, SBC, empirical Bayes, EIG).

References:
    | Likelihood-free MCMC with Amortized Approximate Ratio Estimators (Hermans et al., 2020)
    | https://arxiv.org/abs/1903.04057
    | On Contrastive Learning for Likelihood-free Inference (Durkan et al., 2020)
    | https://arxiv.org/abs/2002.03712
    | Contrastive Neural Ratio Estimation (Miller et al., 2022)
    | https://arxiv.org/abs/2210.06170
    | Towards Reliable Simulation-Based Inference with Balanced Neural Ratio Estimation
    | (Delaunoy et al., 2022) https://arxiv.org/abs/2208.13624
"""

from sbi_core.ratio.losses import (
    LOSSES,
    BNRELoss,
    NREALoss,
    NREBLoss,
    NRECLoss,
    RatioLoss,
    build_loss,
    draw_atoms,
)
from sbi_core.ratio.network import RatioEstimator
from sbi_core.ratio.training import DEFAULT_SETTINGS, default_settings, train_ratio_estimator

__all__ = [
    "RatioEstimator",
    "RatioLoss",
    "NREALoss",
    "NREBLoss",
    "NRECLoss",
    "BNRELoss",
    "LOSSES",
    "build_loss",
    "draw_atoms",
    "DEFAULT_SETTINGS",
    "default_settings",
    "train_ratio_estimator",
]
