"""What a pyhf model says about each of its scalar parameters: name, slot, bounds, constraint."""

from __future__ import annotations

from dataclasses import dataclass

import pyhf

__all__ = ["HistFactoryParameter", "describe_parameters"]

# Modifiers that multiply a yield by their parameter: the parameter must stay positive.
MULTIPLICATIVE_MODIFIERS = frozenset({"normfactor", "shapefactor", "shapesys", "staterror", "lumi"})


@dataclass(frozen=True)
class HistFactoryParameter:
    """One scalar parameter of a pyhf model (a bin of a vector parameter counts as one).

    Arguments:
        name: pyhf's name, with a bin index for vector parameters (``"staterror_SR[0]"``).
        set_name: The parameter set's name (``"staterror_SR"``).
        index: The slot in pyhf's parameter vector.
        modifiers: The modifier types that use the parameter set, e.g. ``("staterror",)``.
        init: pyhf's suggested initial value (the measurement may set it).
        bounds: pyhf's suggested bounds ``(low, high)``.
        fixed: Whether pyhf suggests keeping it fixed (set by the measurement, or a
            staterror/shapesys bin without uncertainty or yield).
        constraint: ``None`` (free), ``"normal"`` or ``"poisson"``.
        auxdata: The nominal auxiliary datum of its constraint term (``None`` if free).
        width: The constraint's scale: the normal's standard deviation, or the
            Poisson's rate factor ``tau`` (expected auxiliary datum ``tau * gamma``).
    """

    name: str
    set_name: str
    index: int
    modifiers: tuple[str, ...]
    init: float
    bounds: tuple[float, float]
    fixed: bool
    constraint: str | None
    auxdata: float | None
    width: float | None

    @property
    def multiplicative(self) -> bool:
        """Whether a modifier multiplies a yield by it, so that it must stay positive."""
        return bool(MULTIPLICATIVE_MODIFIERS.intersection(self.modifiers))


def describe_parameters(model: pyhf.pdf.Model) -> list[HistFactoryParameter]:
    """Lists a pyhf model's scalar parameters in the order of its parameter vector.

    Arguments:
        model: The pyhf model.

    Returns:
        One entry per scalar parameter; ``[p.name for p in ...]`` equals
        ``model.config.par_names``.

    Example:
        >>> model = pyhf.simplemodels.uncorrelated_background([12.0], [50.0], [3.0])
        >>> [(p.name, p.constraint) for p in describe_parameters(model)]
        [('mu', None), ('uncorr_bkguncrt[0]', 'poisson')]
    """
    config = model.config
    modifier_types: dict[str, set[str]] = {}
    for modifier_name, modifier_type in config.modifiers:
        modifier_types.setdefault(modifier_name, set()).add(modifier_type)
    parameters = []
    for set_name in config.par_order:
        paramset = config.param_set(set_name)
        start = config.par_slice(set_name).start
        constraint = paramset.pdf_type if paramset.constrained else None
        widths = (
            paramset.width() if constraint == "normal" else paramset.factors if constraint == "poisson" else None
        )
        for i in range(paramset.n_parameters):
            low, high = paramset.suggested_bounds[i]
            parameters.append(
                HistFactoryParameter(
                    name=set_name if paramset.is_scalar else f"{set_name}[{i}]",
                    set_name=set_name,
                    index=start + i,
                    modifiers=tuple(sorted(modifier_types.get(set_name, ()))),
                    init=float(paramset.suggested_init[i]),
                    bounds=(float(low), float(high)),
                    fixed=bool(paramset.suggested_fixed[i]),
                    constraint=constraint,
                    auxdata=None if constraint is None else float(paramset.auxdata[i]),
                    width=None if widths is None else float(widths[i]),
                )
            )
    return parameters
