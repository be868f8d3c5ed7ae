"""The one list of inference methods: what each is and which config keys it reads.

The config schema (its method enum), the workflow (wildcard constraint, rule params,
which methods get CLS limits) and the library all read this list. It imports
nothing heavy (no sbi, no torch), because the Snakefile reads it on every parse.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MethodSpec", "REGISTRY", "METHODS", "LIKELIHOOD_METHODS", "method_spec"]

# Every method can train as an ensemble (sbi_core.estimators.ensemble).
_OPTIMISER_KEYS = ("batch_size", "learning_rate", "max_epochs", "patience", "validation_fraction",
                   "ensemble_members", "ensemble_bootstrap")
_FLOW_TRAINING = ("flow", "hidden_features", "num_transforms", "num_bins", *_OPTIMISER_KEYS)
_RATIO_TRAINING = (*_OPTIMISER_KEYS, "hidden_features", "num_blocks")
# Early stopping's patience of every method but NRE-B (see MethodSpec.training_defaults).
_PATIENCE = ("patience", 20)
# NPE samples its flow directly; the others go through our batched SIR or MCMC.
_DIRECT_SAMPLING = ("num_samples",)
_SAMPLER_SAMPLING = ("num_samples", "sampler", "num_proposals", "max_proposals", "num_chains", "warmup_steps", "thin",
                     "jump_every")


@dataclass(frozen=True)
class MethodSpec:
    """One inference method.

    Attributes:
        name: The config and workflow name, e.g. ``nre``.
        family: ``flow`` (sbi with zuko flows) or ``ratio`` (our vectorized ratio core).
        description: One line for humans.
        loss: The ratio core's loss (``nre_b``, ...), None for flows.
        is_likelihood: Whether its log-ratio is a log-likelihood up to a constant per x
            (NLE and the ratio family), so its profile is a likelihood ratio (CLs limits).
        training_keys: The ``training`` config keys it reads (NRE-A and BNRE always take
            two atoms, so ``num_atoms`` is not theirs).
        sampling_keys: The ``sampling`` config keys it reads.
        training_defaults: ``(key, value)`` pairs of training keys whose default is the
            method's own (the schema gives none), each measured on the sbibm tasks at 10^4
            simulations (benchmarks/RESULTS.md, "defaults"): NPE's flow is a spline flow,
            NLE's an autoregressive one; NRE-B trains with 50 atoms and patience 50, the
            others with patience 20 (and NRE-C with 10 atoms).
    """

    name: str
    family: str
    description: str
    loss: str | None
    is_likelihood: bool
    training_keys: tuple[str, ...]
    sampling_keys: tuple[str, ...]
    training_defaults: tuple[tuple[str, object], ...] = ()


REGISTRY: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("npe", "flow", "neural posterior estimation (sbi, zuko flow)", None, False,
                   _FLOW_TRAINING, _DIRECT_SAMPLING, (("flow", "zuko_nsf"), _PATIENCE)),
        MethodSpec("nle", "flow", "neural likelihood estimation (sbi, zuko flow)", None, True,
                   _FLOW_TRAINING, _SAMPLER_SAMPLING, (("flow", "zuko_maf"), _PATIENCE)),
        MethodSpec("nre", "ratio", "contrastive neural ratio estimation NRE-B (our ratio core)", "nre_b", True,
                   (*_RATIO_TRAINING, "num_atoms"), _SAMPLER_SAMPLING, (("num_atoms", 50), ("patience", 50))),
        MethodSpec("nre_a", "ratio", "binary neural ratio estimation NRE-A (our ratio core)", "nre_a", True,
                   _RATIO_TRAINING, _SAMPLER_SAMPLING, (_PATIENCE,)),
        MethodSpec("nre_c", "ratio", "contrastive neural ratio estimation NRE-C (our ratio core)", "nre_c", True,
                   (*_RATIO_TRAINING, "num_atoms", "gamma"), _SAMPLER_SAMPLING, (("num_atoms", 10), _PATIENCE)),
        MethodSpec("bnre", "ratio", "balanced neural ratio estimation BNRE (our ratio core)", "bnre", True,
                   (*_RATIO_TRAINING, "regularization_strength"), _SAMPLER_SAMPLING, (_PATIENCE,)),
    )
}
METHODS: tuple[str, ...] = tuple(REGISTRY)
LIKELIHOOD_METHODS: tuple[str, ...] = tuple(name for name, spec in REGISTRY.items() if spec.is_likelihood)


def method_spec(name: str) -> MethodSpec:
    """The registry entry of `name`, or a ValueError listing the methods.

    Example:
        >>> method_spec("bnre").training_keys[-1]
        'regularization_strength'
    """
    if name not in REGISTRY:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {name!r}")
    return REGISTRY[name]
