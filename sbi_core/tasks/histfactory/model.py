r"""A pyhf model evaluated in batches: expected data and simulations at many parameter sets at once.

The inferred parameters :math:`\theta` are a subset of pyhf's parameter vector;
the others stay at pyhf's suggested initial values. The expected main data come
from pyhf itself (numpy backend, float64) through models built with a
``batch_size``, so every HistFactory modifier and interpolation code means what
it means in pyhf. Such models are cached per batch size, a power of two, and a
batch is padded up to it. The expected auxiliary data are the constraint terms'
means: the parameter itself for a normal constraint, :math:`\tau \gamma` for a
Poisson one (shapesys).

The layout of ``x`` is pyhf's: the main data channel by channel in pyhf's
(alphabetical) channel order, then, with auxiliary data, pyhf's ``auxdata``.

References:
    | HistFactory: A tool for creating statistical models for use with RooFit and RooStats
    | (Cranmer et al., 2012) https://cds.cern.ch/record/1456844
    | pyhf: pure-Python implementation of HistFactory statistical models
    | (Heinrich et al., 2021) https://doi.org/10.21105/joss.02823
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pyhf
import torch
from torch import Tensor

from sbi_core.tasks.histfactory.parameters import HistFactoryParameter, describe_parameters
from sbi_core.tasks.histfactory.workspace import quiet_schema_validation

__all__ = ["HistFactoryModel", "numpy_backend"]

# The largest batch handed to pyhf at once (a power of two).
MAX_BATCH_SIZE = 2**13


class HistFactoryModel:
    """A pyhf workspace's model, its inferred parameters and the layout of ``x``.

    Arguments:
        workspace: The validated pyhf workspace.
        measurement: The name of one of its measurements.
        parameter_names: The inferred parameters, in pyhf's naming (``"staterror_SR[0]"``);
            by default the POI, then every other parameter pyhf does not fix, in pyhf's order.
        include_auxdata: Whether ``x`` is the main data followed by the auxiliary data
            (``True``), or the main data only.

    Example:
        >>> model = HistFactoryModel(workspace, "Measurement", ["mu"], include_auxdata=False)
        >>> model.expected_data(torch.tensor([[1.0], [2.0]])).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        workspace: pyhf.Workspace,
        measurement: str,
        parameter_names: Sequence[str] | None = None,
        include_auxdata: bool = False,
    ):
        self.workspace = workspace
        self.measurement = measurement
        self.include_auxdata = include_auxdata
        self._models: dict[int, pyhf.pdf.Model] = {}
        with numpy_backend(), quiet_schema_validation():
            self.pyhf_model = workspace.model(measurement_name=measurement)
        config = self.pyhf_model.config
        self.all_parameters = describe_parameters(self.pyhf_model)
        by_name = {p.name: p for p in self.all_parameters}
        if parameter_names is None:
            poi = config.poi_name
            parameter_names = [n for n in [poi] if not by_name[n].fixed] + [
                p.name for p in self.all_parameters if p.name != poi and not p.fixed
            ]
        unknown = [n for n in parameter_names if n not in by_name]
        if unknown:
            raise KeyError(f"parameter_names: unknown {unknown}; the model's are {list(by_name)}")
        self.parameters: tuple[HistFactoryParameter, ...] = tuple(by_name[n] for n in parameter_names)
        self.parameter_index = torch.tensor([p.index for p in self.parameters], dtype=torch.long)
        self.fixed_values = torch.tensor([p.init for p in self.all_parameters], dtype=torch.float64)
        self.num_main = int(config.nmaindata)
        self.num_aux = int(config.nauxdata) if include_auxdata else 0

        # Auxiliary data, in pyhf's order: which parameter each datum constrains, and how.
        constrained = [p for name in config.auxdata_order for p in self.all_parameters if p.set_name == name]
        kinds = np.array([p.constraint for p in constrained])
        self.normal_slots = torch.from_numpy(np.flatnonzero(kinds == "normal"))
        self.poisson_slots = torch.from_numpy(np.flatnonzero(kinds == "poisson"))
        index = torch.tensor([p.index for p in constrained], dtype=torch.long)
        width = torch.tensor([p.width for p in constrained], dtype=torch.float64)
        self.normal_index, self.normal_sigma = index[self.normal_slots], width[self.normal_slots]
        self.poisson_index, self.poisson_factor = index[self.poisson_slots], width[self.poisson_slots]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The inferred parameters' names."""
        return tuple(p.name for p in self.parameters)

    @property
    def num_x(self) -> int:
        """The length of ``x``: main data, plus auxiliary data if included."""
        return self.num_main + self.num_aux

    def pyhf_parameters(self, theta: Tensor) -> Tensor:
        """Returns pyhf's full parameter vectors ``[..., n_pars]`` (float64, CPU) for ``theta [..., d]``."""
        pars = self.fixed_values.expand(*theta.shape[:-1], -1).clone()
        pars[..., self.parameter_index] = theta.detach().cpu().to(torch.float64)
        return pars

    def expected_main(self, pars: Tensor) -> Tensor:
        """Returns pyhf's expected main data ``[..., n_main]`` (float64) at parameters ``[..., n_pars]``.

        Batches of any size are evaluated in chunks of at most 8192; a parameter set at
        which pyhf's arithmetic fails (e.g. a negative yield's logarithm) gives NaN.
        """
        flat = pars.reshape(-1, pars.shape[-1]).numpy()
        out = np.empty((len(flat), self.num_main))
        # Invalid values are detected by the callers (NaN or negative rates), not warned about.
        with numpy_backend(), np.errstate(all="ignore"):
            for start in range(0, len(flat), MAX_BATCH_SIZE):
                chunk = flat[start : start + MAX_BATCH_SIZE]
                size = 1 << (len(chunk) - 1).bit_length()
                padding = np.broadcast_to(self.fixed_values.numpy(), (size - len(chunk), flat.shape[1]))
                expected = self._batched_model(size).expected_actualdata(np.concatenate([chunk, padding]))
                out[start : start + len(chunk)] = np.asarray(expected)[: len(chunk)]
        return torch.from_numpy(out).reshape(*pars.shape[:-1], self.num_main)

    def expected_aux(self, pars: Tensor) -> tuple[Tensor, Tensor]:
        """Returns the means of the normal and the Poisson constraint terms at ``pars [..., n_pars]``.

        Their auxiliary data sit at :attr:`normal_slots` and :attr:`poisson_slots` of
        pyhf's auxdata.
        """
        return pars[..., self.normal_index], pars[..., self.poisson_index] * self.poisson_factor

    def expected_data(self, theta: Tensor) -> Tensor:
        """Returns the expected ``x [..., n_x]`` (main, then auxiliary data if included) at ``theta [..., d]``."""
        pars = self.pyhf_parameters(theta)
        main = self.expected_main(pars)
        if not self.include_auxdata:
            return main
        aux = torch.empty(*pars.shape[:-1], self.num_aux, dtype=torch.float64)
        aux[..., self.normal_slots], aux[..., self.poisson_slots] = self.expected_aux(pars)
        return torch.cat([main, aux], dim=-1)

    def simulate(self, theta: Tensor) -> Tensor:
        """Draws ``x [N, n_x]`` (float32) at ``theta [N, d]`` from torch's global generator.

        Main data and shapesys auxiliary data are Poisson, the other auxiliary data
        normal around the parameter with the constraint's width. A row whose
        Poisson rate is negative or not finite is NaN.
        """
        pars = self.pyhf_parameters(theta)
        rates = [self.expected_main(pars)]
        if self.include_auxdata:
            normal_mean, poisson_rate = self.expected_aux(pars)
            rates.append(poisson_rate)
        valid = torch.cat([r.isfinite() & (r >= 0) for r in rates], dim=-1).all(-1)
        x = torch.full((len(pars), self.num_x), torch.nan, dtype=torch.float64)
        x[valid, : self.num_main] = torch.poisson(rates[0][valid])
        if self.include_auxdata:
            aux = torch.empty(int(valid.sum()), self.num_aux, dtype=torch.float64)
            noise = torch.randn(len(aux), len(self.normal_slots), dtype=torch.float64)
            aux[:, self.normal_slots] = normal_mean[valid] + self.normal_sigma * noise
            aux[:, self.poisson_slots] = torch.poisson(poisson_rate[valid])
            x[valid, self.num_main :] = aux
        return x.to(torch.float32)

    def observed_data(self) -> Tensor:
        """Returns the workspace's observations as one ``x [n_x]`` (float32).

        With auxiliary data, these are pyhf's nominal auxdata.
        """
        with numpy_backend():
            data = self.workspace.data(self.pyhf_model, include_auxdata=self.include_auxdata)
        return torch.tensor(data, dtype=torch.float32)

    def _batched_model(self, batch_size: int) -> pyhf.pdf.Model:
        if batch_size not in self._models:
            self._models[batch_size] = self.workspace.model(
                measurement_name=self.measurement, batch_size=batch_size, validate=False
            )
        return self._models[batch_size]


@contextmanager
def numpy_backend() -> Iterator[None]:
    """Runs pyhf on its numpy backend in float64, restoring the caller's backend afterwards."""
    tensorlib, optimizer = pyhf.get_backend()
    if tensorlib.name == "numpy" and tensorlib.precision == "64b":
        yield
        return
    pyhf.set_backend("numpy", precision="64b")
    try:
        yield
    finally:
        pyhf.set_backend(tensorlib, optimizer)
