r"""Iterative Bayesian unfolding (IBU, D'Agostini's method) in numpy, numerically equal to PyUnfold's.

With the response :math:`P_{j\mu} = P(E_j | C_\mu)` ``[n_effects, n_causes]``, the
efficiencies :math:`\epsilon_\mu = \sum_j P_{j\mu}` and the observed counts :math:`n_j`,
each iteration applies Bayes' theorem to the previous cause counts :math:`\phi^t`:

.. math:: M^t_{j\mu} = \frac{P_{j\mu} \, \phi^t_\mu}{\epsilon_\mu \sum_\rho P_{j\rho} \phi^t_\rho},
          \qquad \phi^{t+1}_\mu = \sum_j n_j M^t_{j\mu},

starting from :math:`\phi^0 = \sum_j n_j \cdot \mathrm{prior}` (uniform by default). The
iterations stop once a test statistic between :math:`\phi^{t+1}` and :math:`\phi^t`
drops below ``ts_stopping`` (or after ``max_iter``). The covariance of the result is
Adye's propagation of the derivatives :math:`\partial\phi/\partial n` and
:math:`\partial\phi/\partial P` through all iterations: ``stat_err`` from the data
errors (diagonal), ``sys_err`` from the response's (its ``multinomial`` form with
:math:`\tilde n_\mu = (\epsilon_\mu / \sigma_{\epsilon_\mu})^2` simulated events per
cause, or its ``poisson`` form from ``response_err``), exactly as PyUnfold 0.5.0's
``iterative_unfold`` (without callbacks); ``tests/test_ibu.py`` compares the two.

:func:`response_from_simulations` builds the response, its errors and the
efficiencies from simulated (cause, observable) pairs.

References:
    | A multidimensional unfolding method based on Bayes' theorem (D'Agostini, 1995)
    | https://doi.org/10.1016/0168-9002(95)00274-X
    | Corrected error calculation for iterative Bayesian unfolding (Adye, 2011)
    | https://arxiv.org/abs/1105.1160
    | PyUnfold: A Python package for iterative unfolding (Bourbeau & Hampel, 2018)
    | https://doi.org/10.21105/joss.00741
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

__all__ = [
    "TEST_STATISTICS",
    "COVARIANCE_TYPES",
    "Response",
    "IBUResult",
    "response_from_simulations",
    "iterative_unfold",
]

TEST_STATISTICS = ("ks", "chi2", "bf", "rmd")
COVARIANCE_TYPES = ("multinomial", "poisson")


@dataclass(frozen=True, eq=False)
class Response:
    r"""A response matrix built from simulations, in PyUnfold's layout.

    Arguments:
        matrix: :math:`P(E_j | C_\mu)` ``[n_effects, n_causes]``: the fraction of the
            events generated in cause bin :math:`\mu` observed in effect bin :math:`j`.
        matrix_err: Its errors ``[n_effects, n_causes]``.
        efficiencies: :math:`\epsilon_\mu = \sum_j P(E_j | C_\mu)` ``[n_causes]``.
        efficiencies_err: Their errors ``[n_causes]``.
        cause_edges: One edge array per cause dimension; with two, the cause bins are
            flattened row-major (``cause_shape`` gives the shape to reshape them to).
        observable_edges: The observable's (effect) bin edges ``[n_effects + 1]``.
    """

    matrix: NDArray[np.float64]
    matrix_err: NDArray[np.float64]
    efficiencies: NDArray[np.float64]
    efficiencies_err: NDArray[np.float64]
    cause_edges: tuple[NDArray[np.float64], ...]
    observable_edges: NDArray[np.float64]

    @property
    def cause_shape(self) -> tuple[int, ...]:
        """The cause bins per cause dimension (``unfolded.reshape(cause_shape)``)."""
        return tuple(len(edges) - 1 for edges in self.cause_edges)


@dataclass(frozen=True, eq=False)
class IBUResult:
    r"""The unfolded cause distribution and its errors (PyUnfold's result keys).

    Arguments:
        unfolded: The unfolded cause counts ``[n_causes]``.
        stat_err: Their statistical errors (from ``data_err``) ``[n_causes]``.
        sys_err: Their systematic errors (from the response's) ``[n_causes]``.
        num_iterations: The iterations done.
        ts_iter: The last iteration's test statistic.
        ts_stopping: The stopping threshold.
        unfolding_matrix: The last iteration's :math:`M_{j\mu}` ``[n_effects, n_causes]``.
        iterations: With ``return_iterations``, one dict per iteration with the keys
            above (but ``iterations``); else None.
    """

    unfolded: NDArray[np.float64]
    stat_err: NDArray[np.float64]
    sys_err: NDArray[np.float64]
    num_iterations: int
    ts_iter: float
    ts_stopping: float
    unfolding_matrix: NDArray[np.float64]
    iterations: list[dict[str, Any]] | None = None


def response_from_simulations(
    cause: ArrayLike,
    observable: ArrayLike,
    cause_edges: ArrayLike | Sequence[ArrayLike],
    observable_edges: ArrayLike,
    weights: ArrayLike | None = None,
) -> Response:
    r"""Builds the response matrix, its errors and the efficiencies from simulated pairs.

    With :math:`N_\mu` the events generated in cause bin :math:`\mu` and :math:`w` the
    detection probabilities (1 without ``weights``), :math:`P_{j\mu}` is the sum of
    :math:`w` over the events of cause bin :math:`\mu` observed in effect bin :math:`j`,
    divided by :math:`N_\mu`, and :math:`\epsilon_\mu = \sum_j P_{j\mu}`: events observed
    outside ``observable_edges`` (and :math:`w < 1`) are the inefficiency. Events whose
    cause is outside ``cause_edges`` are ignored. Bins are half-open ``[a, b)``, the last
    one closed, as ``np.histogram``'s.

    Errors: ``matrix_err`` is the Poisson counting error :math:`\sqrt{\sum w^2} / N_\mu`,
    as PyUnfold's tutorial computes ``response_err`` (``sqrt`` of the counts, scaled as the
    counts are); ``efficiencies_err`` is :math:`\epsilon_\mu / \sqrt{N_\mu}` (the tutorial
    just sets a constant 0.1), because the ``multinomial`` covariance of
    :func:`iterative_unfold` (and PyUnfold) reads :math:`(\epsilon_\mu / \sigma_{\epsilon_\mu})^2`
    as the number of simulated events of cause :math:`\mu`: with this error it reads
    :math:`N_\mu`, as it should. (A binomial error would make it
    :math:`N_\mu \epsilon_\mu / (1 - \epsilon_\mu)`, and a cause with
    :math:`\epsilon_\mu = 1` would add no ``sys_err`` at all.)

    Arguments:
        cause: The simulated causes ``[N]``, or ``[N, 2]`` for a two-dimensional cause.
        observable: The simulated observables ``[N]``.
        cause_edges: The cause's bin edges, or a pair of edge arrays for a ``[N, 2]``
            cause (flattened row-major: bin ``(a, b)`` is ``a * n_b + b``).
        observable_edges: The observable's bin edges (the effect bins).
        weights: Optional per-event detection probabilities in [0, 1] ``[N]``.

    Returns:
        The :class:`Response` (float64).

    Raises:
        ValueError: naming the argument, for non-finite values, mismatched lengths,
            edges that do not increase, weights outside [0, 1], or a cause bin with no
            simulated events (empty causes).
    """
    cause = _finite_array("cause", cause)
    observable = _finite_array("observable", observable)
    if cause.ndim == 1:
        cause = cause[:, None]
    if cause.ndim != 2 or cause.shape[1] not in (1, 2):
        raise ValueError(f"cause: expected shape [N] or [N, 2], got {list(cause.shape)}")
    if observable.ndim != 1:
        raise ValueError(f"observable: expected shape [N], got {list(observable.shape)}")
    if len(observable) != len(cause):
        raise ValueError(
            f"observable: expected one value per cause ({len(cause)}), got {len(observable)}"
        )
    if weights is None:
        weights = np.ones(len(cause))
    else:
        weights = _finite_array("weights", weights)
        if weights.shape != observable.shape:
            raise ValueError(
                f"weights: expected shape [{len(cause)}] (one per event), got {list(weights.shape)}"
            )
        if np.any((weights < 0) | (weights > 1)):
            raise ValueError("weights: detection probabilities must lie in [0, 1]")

    cause_edges = _cause_edges(cause_edges, cause.shape[1])
    observable_edges = _edges("observable_edges", observable_edges)
    cause_shape = tuple(len(edges) - 1 for edges in cause_edges)
    n_causes = int(np.prod(cause_shape))
    n_effects = len(observable_edges) - 1

    cause_index = np.zeros(len(cause), dtype=np.int64)
    in_causes = np.ones(len(cause), dtype=bool)
    for dim, edges in enumerate(cause_edges):  # row-major flattening of the cause bins
        index = _bin_index(cause[:, dim], edges)
        in_causes &= index >= 0
        cause_index = cause_index * (len(edges) - 1) + index
    effect_index = _bin_index(observable, observable_edges)

    generated = np.bincount(cause_index[in_causes], minlength=n_causes).astype(np.float64)
    if np.any(generated == 0):
        empty = np.flatnonzero(generated == 0)
        bins = [tuple(int(i) for i in np.unravel_index(k, cause_shape)) for k in empty[:5]]
        shown = [b[0] if len(b) == 1 else b for b in bins]
        raise ValueError(
            f"cause_edges: {len(empty)} empty cause bin(s) with no simulated events, "
            f"e.g. bin(s) {shown}; choose a binning the simulations fill"
        )

    observed = in_causes & (effect_index >= 0)
    pair = effect_index[observed] * n_causes + cause_index[observed]
    size = n_effects * n_causes
    counts = np.bincount(pair, weights=weights[observed], minlength=size)
    counts_sq = np.bincount(pair, weights=weights[observed] ** 2, minlength=size)
    matrix = counts.reshape(n_effects, n_causes) / generated
    matrix_err = np.sqrt(counts_sq.reshape(n_effects, n_causes)) / generated
    efficiencies = matrix.sum(axis=0)
    efficiencies_err = efficiencies / np.sqrt(generated)
    return Response(
        matrix=matrix,
        matrix_err=matrix_err,
        efficiencies=efficiencies,
        efficiencies_err=efficiencies_err,
        cause_edges=cause_edges,
        observable_edges=observable_edges,
    )


def iterative_unfold(
    data: ArrayLike,
    data_err: ArrayLike,
    response: ArrayLike,
    response_err: ArrayLike,
    efficiencies: ArrayLike,
    efficiencies_err: ArrayLike,
    prior: ArrayLike | None = None,
    ts: str = "ks",
    ts_stopping: float = 0.01,
    max_iter: int = 100,
    cov_type: str = "multinomial",
    return_iterations: bool = False,
) -> IBUResult:
    r"""Unfolds the observed counts by iterative Bayesian unfolding, as PyUnfold's ``iterative_unfold``.

    Arguments:
        data: The observed counts per effect bin ``[n_effects]``.
        data_err: Their errors ``[n_effects]`` (e.g. ``sqrt(data)``).
        response: :math:`P(E_j | C_\mu)` ``[n_effects, n_causes]``.
        response_err: Its errors ``[n_effects, n_causes]`` (used by ``cov_type="poisson"``).
        efficiencies: The detection efficiency per cause ``[n_causes]``.
        efficiencies_err: Their errors ``[n_causes]``; ``cov_type="multinomial"`` takes
            :math:`(\epsilon_\mu / \sigma_{\epsilon_\mu})^2` as the simulated events of
            cause :math:`\mu` (an error of 0 counts as infinitely many: no ``sys_err``
            from that cause).
        prior: The initial cause probabilities ``[n_causes]``, summing to 1
            (default: uniform).
        ts: The stopping test statistic between successive iterations, one of
            :data:`TEST_STATISTICS`: ``"ks"`` (largest difference of the normalised
            cumulative sums), ``"chi2"`` (reduced chi-squared of the shapes), ``"bf"``
            (log Bayes factor) or ``"rmd"`` (largest relative difference), over all
            cause bins (PyUnfold's ``TestRange`` keyword never reaches its test statistic).
        ts_stopping: Stop once the test statistic is below this.
        max_iter: Stop after this many iterations at most (>= 1).
        cov_type: The response's covariance, one of :data:`COVARIANCE_TYPES`.
        return_iterations: Whether to keep every iteration's results.

    Returns:
        The :class:`IBUResult` (float64).

    Raises:
        ValueError: naming the argument, for mismatched shapes, negative or non-finite
            inputs, no observed counts, a prior that is not a normalised distribution, or
            an unknown ``ts``/``cov_type``.

    Example:
        >>> result = iterative_unfold([100, 150], [10, 12.2], [[0.9, 0.1], [0.1, 0.9]],
        ...                           [[0.01, 0.01], [0.01, 0.01]], [1, 1], [0.01, 0.01])
        >>> result.unfolded.round(4), result.num_iterations
        (array([ 94.3209, 155.6791]), 4)
    """
    data = _nonnegative("data", data, ndim=1)
    response = _nonnegative("response", response, ndim=2)
    n_effects, n_causes = response.shape
    if len(data) != n_effects:
        raise ValueError(
            f"data: expected one count per effect bin of response ({n_effects}), got {len(data)}"
        )
    if data.sum() == 0:
        raise ValueError("data: no observed counts to unfold")
    data_err = _nonnegative("data_err", data_err, shape=data.shape)
    response_err = _nonnegative("response_err", response_err, shape=response.shape)
    efficiencies = _nonnegative("efficiencies", efficiencies, shape=(n_causes,))
    efficiencies_err = _nonnegative("efficiencies_err", efficiencies_err, shape=(n_causes,))
    if prior is None:
        prior = np.full(n_causes, 1 / n_causes)
    else:
        prior = _nonnegative("prior", prior, shape=(n_causes,))
        if not np.isclose(prior.sum(), 1):  # PyUnfold's np.allclose tolerance
            raise ValueError(f"prior: the cause probabilities must sum to 1, got {prior.sum()}")
    if ts not in TEST_STATISTICS:
        raise ValueError(f"ts: expected one of {TEST_STATISTICS}, got {ts!r}")
    cov_type = str(cov_type).lower()
    if cov_type not in COVARIANCE_TYPES:
        raise ValueError(f"cov_type: expected one of {COVARIANCE_TYPES}, got {cov_type!r}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter: expected an integer >= 1, got {max_iter}")

    inverse_efficiencies = _safe_inverse(efficiencies)
    if cov_type == "multinomial":
        # PyUnfold's simulated events per cause, (eps / sigma_eps)^2, enter as their inverse.
        inverse_simulated = _safe_inverse((efficiencies * _safe_inverse(efficiencies_err)) ** 2)
    else:
        inverse_simulated = None

    phi = data.sum() * prior
    # d phi / d data [n_effects, n_causes] and d phi / d response [n_causes, n_effects * n_causes]
    # (the response entries flattened row-major), propagated through the iterations.
    dphi_ddata = dphi_dresponse = None
    statistic = np.inf
    iterations: list[dict[str, Any]] = []
    while not statistic < ts_stopping and len(iterations) < max_iter:
        inverse_folded = _safe_inverse(response @ phi)
        unfolding_matrix = response * (phi * inverse_efficiencies) * inverse_folded[:, None]
        phi_next = data @ unfolding_matrix

        dresponse_now = _dphi_dresponse_direct(
            unfolding_matrix, data * inverse_folded, phi, phi_next, inverse_efficiencies
        )
        if dphi_ddata is None:  # D'Agostini's derivatives (Adye's first iteration)
            dphi_ddata, dphi_dresponse = unfolding_matrix.copy(), dresponse_now
        else:  # Adye's corrections: phi itself depends on the data and the response
            ratio = phi_next * _safe_inverse(phi)
            efficiency_ratio = efficiencies * _safe_inverse(phi)
            weighted = (-unfolding_matrix * efficiency_ratio).T * data  # [n_causes, n_effects]
            dphi_ddata = (
                unfolding_matrix + unfolding_matrix @ (weighted @ dphi_ddata) + dphi_ddata * ratio
            )
            feedback = (unfolding_matrix.T * data) @ (unfolding_matrix * efficiency_ratio)
            dphi_dresponse = dresponse_now + (
                dphi_dresponse * ratio[:, None] - feedback @ dphi_dresponse
            )

        statistic = _test_statistic(ts, phi_next, phi)
        step: dict[str, Any] = {
            "unfolded": phi_next,
            "num_iterations": len(iterations) + 1,
            "unfolding_matrix": unfolding_matrix,
            "ts_iter": float(statistic),
            "ts_stopping": float(ts_stopping),
        }
        if return_iterations:
            step["stat_err"] = _stat_err(dphi_ddata, data_err)
            step["sys_err"] = _sys_err(dphi_dresponse, response, response_err, inverse_simulated)
        iterations.append(step)
        phi = phi_next

    last = iterations[-1]
    if not return_iterations:
        last["stat_err"] = _stat_err(dphi_ddata, data_err)
        last["sys_err"] = _sys_err(dphi_dresponse, response, response_err, inverse_simulated)
    return IBUResult(
        unfolded=last["unfolded"],
        stat_err=last["stat_err"],
        sys_err=last["sys_err"],
        num_iterations=last["num_iterations"],
        ts_iter=last["ts_iter"],
        ts_stopping=last["ts_stopping"],
        unfolding_matrix=last["unfolding_matrix"],
        iterations=iterations if return_iterations else None,
    )


def _dphi_dresponse_direct(
    unfolding_matrix: NDArray,
    data_over_folded: NDArray,
    phi: NDArray,
    phi_next: NDArray,
    inverse_efficiencies: NDArray,
) -> NDArray:
    r"""Returns D'Agostini's :math:`\partial\phi^{t+1}_\mu / \partial P_{k\lambda}` at fixed :math:`\phi^t`.

    .. math:: \frac{\delta_{\lambda\mu}}{\epsilon_\mu}
              \Big(\frac{n_k \phi^t_\mu}{f_k} - \phi^{t+1}_\mu\Big)
              - \frac{n_k \phi^t_\lambda}{f_k} M_{k\mu}, \qquad f_k = \sum_\rho P_{k\rho}\phi^t_\rho.

    Arguments:
        unfolding_matrix: :math:`M` ``[n_effects, n_causes]``.
        data_over_folded: :math:`n_k / f_k` ``[n_effects]``.
        phi: :math:`\phi^t` ``[n_causes]``.
        phi_next: :math:`\phi^{t+1}` ``[n_causes]``.
        inverse_efficiencies: :math:`1 / \epsilon` (0 where :math:`\epsilon = 0`) ``[n_causes]``.

    Returns:
        ``[n_causes, n_effects * n_causes]``: row :math:`\mu`, column :math:`k \cdot n_{causes} + \lambda`.
    """
    n_effects, n_causes = unfolding_matrix.shape
    derivative = (-data_over_folded[:, None] * unfolding_matrix).T[:, :, None] * phi
    diagonal = (np.outer(phi, data_over_folded) - phi_next[:, None]) * inverse_efficiencies[:, None]
    causes = np.arange(n_causes)
    derivative[causes, :, causes] += diagonal
    return derivative.reshape(n_causes, n_effects * n_causes)


def _stat_err(dphi_ddata: NDArray, data_err: NDArray) -> NDArray:
    """Returns the square root of the diagonal of ``J diag(data_err**2) J^T`` (``J = dphi/ddata``)."""
    return np.sqrt((dphi_ddata**2).T @ data_err**2)


def _sys_err(
    dphi_dresponse: NDArray,
    response: NDArray,
    response_err: NDArray,
    inverse_simulated: NDArray | None,
) -> NDArray:
    r"""Returns the square root of the diagonal of :math:`J V_P J^T` for the response's covariance.

    ``poisson``: :math:`V_P = diag(\sigma_P^2)`. ``multinomial`` (``inverse_simulated``
    given): the entries of cause :math:`\lambda` covary as
    :math:`(\delta_{kl} P_{k\lambda} - P_{k\lambda} P_{l\lambda}) / \tilde n_\lambda`, the
    causes are independent.
    """
    n_causes = dphi_dresponse.shape[0]
    derivative = dphi_dresponse.reshape(n_causes, *response.shape)  # [mu, k, lambda]
    if inverse_simulated is None:
        variance = np.einsum("mkl,kl->m", derivative**2, response_err**2)
    else:
        diagonal = np.einsum("mkl,kl->m", derivative**2, response * inverse_simulated)
        projected = np.einsum("mkl,kl->ml", derivative, response)
        variance = diagonal - projected**2 @ inverse_simulated
    return np.sqrt(np.clip(variance, 0, None))


def _test_statistic(name: str, current: NDArray, previous: NDArray) -> float:
    """Returns PyUnfold's test statistic ``name`` between two successive cause distributions."""
    n_current, n_previous = current.sum(), previous.sum()
    if name == "ks":
        return float(
            np.max(np.abs(np.cumsum(current) / n_current - np.cumsum(previous) / n_previous))
        )
    if name == "bf":
        # Summed in PyUnfold's order (sequentially), so that the stopping decision matches.
        terms = gammaln(current + 1) + gammaln(previous + 1) - gammaln(current + previous + 2)
        norm = (
            gammaln(n_current + n_previous + 2) - gammaln(n_current + 1) - gammaln(n_previous + 1)
        )
        return float(np.cumsum(np.concatenate([[norm], terms]))[-1])
    total = current + previous
    total = np.where(total < 1, 1.0, total)
    if name == "chi2":
        difference = n_previous * current - n_current * previous
        return float(
            np.sum(difference * difference / total) / (n_current * n_previous) / len(current)
        )
    return float(np.max(np.abs(current - previous) / total))  # rmd


def _safe_inverse(x: NDArray) -> NDArray:
    """Returns ``1 / x``, 0 where ``x == 0`` (PyUnfold's convention)."""
    x = np.asarray(x, dtype=np.float64)
    inverse = np.zeros_like(x)
    np.divide(1.0, x, out=inverse, where=x != 0)
    return inverse


def _finite_array(name: str, value: ArrayLike) -> NDArray[np.float64]:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected a numeric array ({error})") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains non-finite values")
    return array


def _nonnegative(
    name: str, value: ArrayLike, ndim: int | None = None, shape: tuple[int, ...] | None = None
) -> NDArray[np.float64]:
    array = _finite_array(name, value)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {list(array.shape)}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name}: expected shape {list(shape)}, got {list(array.shape)}")
    if array.size == 0:
        raise ValueError(f"{name}: is empty")
    if np.any(array < 0):
        raise ValueError(f"{name}: the items must be non-negative")
    return array


def _edges(name: str, value: ArrayLike) -> NDArray[np.float64]:
    edges = _finite_array(name, value)
    if edges.ndim != 1 or len(edges) < 2:
        raise ValueError(
            f"{name}: expected a 1-D array of at least 2 bin edges, got shape {list(edges.shape)}"
        )
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"{name}: the bin edges must be strictly increasing")
    return edges


def _cause_edges(
    value: ArrayLike | Sequence[ArrayLike], n_dims: int
) -> tuple[NDArray[np.float64], ...]:
    """Returns one edge array per cause dimension (a single array is the 1-D case)."""
    is_sequence = isinstance(value, (list, tuple)) and len(value) > 0 and np.ndim(value[0]) == 1
    if not is_sequence and n_dims == 1:
        return (_edges("cause_edges", value),)
    if isinstance(value, np.ndarray) and value.ndim == 2:
        value = list(value)
    if not isinstance(value, (list, tuple)) or len(value) != n_dims:
        raise ValueError(
            f"cause_edges: expected one edge array per cause dimension ({n_dims}), "
            f"got {len(value) if isinstance(value, (list, tuple)) else 'a single array'}"
        )
    return tuple(_edges(f"cause_edges[{dim}]", edges) for dim, edges in enumerate(value))


def _bin_index(values: NDArray, edges: NDArray) -> NDArray[np.int64]:
    """Returns each value's bin (``np.histogram``'s: half-open, the last closed), -1 outside."""
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = len(edges) - 2
    index[(values < edges[0]) | (values > edges[-1])] = -1
    return index
