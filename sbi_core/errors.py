"""Errors raised where bad input enters, naming the key or file at fault."""

__all__ = ["ConfigError", "ArtifactError", "SimulationError", "SamplingError"]


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or inconsistent.

    The message starts with the dotted key (e.g. ``analyses.demo.prior.low``)
    and says what was expected.
    """


class ArtifactError(ValueError):
    """A file (simulations, observation, estimator) is malformed or foreign."""


class SimulationError(RuntimeError):
    """A simulator failed or returned too many invalid (NaN/inf) rows."""


class SamplingError(RuntimeError):
    """Sampling cannot make progress: no finite posterior density, or no draw accepted."""
