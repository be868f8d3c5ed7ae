"""Inference methods behind one interface: NPE and NLE (sbi, zuko flows) and the NRE family (our ratio core)."""

from sbi_core.estimators.methods import (
    METHODS,
    RATIO_LOSSES,
    PosteriorEstimate,
    build_posterior,
    load_estimator,
    require_device,
    save_estimator,
    train_estimator,
)

__all__ = [
    "METHODS", "RATIO_LOSSES", "PosteriorEstimate", "build_posterior",
    "load_estimator", "require_device", "save_estimator", "train_estimator",
]
