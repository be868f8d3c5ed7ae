"""Neural posterior (NPE) and likelihood (NLE) estimators through sbi, with zuko flows."""

from sbi_core.estimators.flows import (
    METHODS,
    build_estimator,
    build_posterior,
    load_estimator,
    sample_many,
    save_estimator,
    train_estimator,
)

__all__ = [
    "METHODS",
    "build_estimator",
    "build_posterior",
    "load_estimator",
    "sample_many",
    "save_estimator",
    "train_estimator",
]
