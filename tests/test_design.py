"""Experimental design: EIG bounds against the exact linear-Gaussian EIG, amortised estimators,
multi-start ascent against the exact optimum and against exhaustive search."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sbi_core.design import (
    DesignSpace,
    candidate_search,
    design_task,
    estimator_eig,
    likelihood_eig,
    multistart_ascent,
    surrogate_task,
    train_design_estimator,
    train_marginal_likelihood,
)
from sbi_core.errors import ConfigError
from sbi_core.pipeline.design import flat_eig_warning

pytestmark = pytest.mark.usefixtures("one_thread")

TRAINING = {"hidden_features": 64, "num_blocks": 2, "num_atoms": 10, "batch_size": 256, "learning_rate": 1e-3,
            "max_epochs": 200, "patience": 10, "validation_fraction": 0.1,
            "flow": "zuko_maf", "num_transforms": 3, "num_bins": 8}
# the exact answer's support: the ends and the middle of the line's range, and T = 2 pairs
LINE_DESIGNS = torch.tensor([[[-1.0]], [[0.0]], [[0.6]], [[1.0]]])


# ------------------------------------------------------------------ the design space


@pytest.mark.parametrize(("low", "high", "message"), [
    ([0.0, 1.0], [1.0, 1.0], "variable 1 has low 1 >= high 1"),
    ([0.0], [1.0, 2.0], "same nonzero length"),
    ([float("nan")], [1.0], "finite"),
])
def test_a_bad_box_is_refused_naming_the_key(low, high, message):
    with pytest.raises(ConfigError, match=rf"design\.space: .*{message}"):
        DesignSpace.from_bounds(low, high)


def test_designs_of_the_wrong_shape_or_outside_the_box_are_refused():
    space = DesignSpace.from_bounds([-6.0, -6.0], [6.0, 6.0], num_experiments=2, names=("x", "y"))
    assert space.check(space.sample(3)).shape == (3, 2, 2)
    with pytest.raises(ConfigError, match=r"design\.candidates: designs must have shape \[D, 2, 2\].*got \[3, 2\]"):
        space.check(torch.zeros(3, 2), key="design.candidates")
    outside = torch.zeros(2, 2, 2)
    outside[1, 0, 1] = 7.0
    with pytest.raises(ConfigError, match=r"design 1 lies outside the box: variable y = 7 not in \[-6, 6\]"):
        space.check(outside)


def test_the_grid_covers_every_combination_of_the_experiments():
    grid = DesignSpace.from_bounds([0.0], [24.0], num_experiments=2).grid(5)
    assert grid.shape == (25, 2, 1)
    assert len({tuple(d.flatten().tolist()) for d in grid}) == 25
    assert grid.min() == 0 and grid.max() == 24


# ------------------------------------------------------------------ EIG from the likelihood


@pytest.mark.parametrize("num_experiments", [1, 2])
def test_likelihood_bounds_converge_to_the_exact_eig(num_experiments):
    """With L = 2000 contrastive draws sPCE and sNMC are within 0.05 nats of
    0.5 logdet(I + X X^T / sigma^2), and neither is on the wrong side of it by more than twice its
    standard error (at its bias of ~1e-4 nats, one standard error is crossed by chance 16% of the time)."""
    task = design_task("linear_gaussian", num_experiments)
    designs = LINE_DESIGNS.expand(-1, num_experiments, -1).clone()
    if num_experiments == 2:
        designs[:, 1] = -designs[:, 1] * 0.5
    exact = task.exact_eig(designs)
    torch.manual_seed(0)
    lower = likelihood_eig(task, designs, num_outer=4000, num_inner=2000)
    upper = likelihood_eig(task, designs, num_outer=4000, num_inner=2000, upper=True)
    assert torch.all((lower.eig - exact).abs() < 0.05), (lower.eig, exact)
    assert torch.all((upper.eig - exact).abs() < 0.05), (upper.eig, exact)
    assert torch.all(lower.eig <= exact + 2 * lower.stderr), (lower.eig, lower.stderr, exact)
    assert torch.all(upper.eig >= exact - 2 * upper.stderr), (upper.eig, upper.stderr, exact)
    assert torch.all(lower.stderr < 0.02) and lower.method == "spce" and upper.method == "snmc"


def test_few_contrastive_draws_bracket_the_exact_eig():
    """With L = 4 the bias is larger than the noise: sPCE is below the exact EIG and sNMC above it,
    each by more than five standard errors (a bound on the wrong side, or the two swapped, fails)."""
    task = design_task("linear_gaussian")
    exact = task.exact_eig(LINE_DESIGNS)
    torch.manual_seed(0)
    lower = likelihood_eig(task, LINE_DESIGNS, num_outer=20_000, num_inner=4)
    upper = likelihood_eig(task, LINE_DESIGNS, num_outer=20_000, num_inner=4, upper=True)
    assert torch.all(lower.eig < exact - 5 * lower.stderr), (lower.eig, exact)
    assert torch.all(upper.eig > exact + 5 * upper.stderr), (upper.eig, exact)


def test_a_contrastive_bound_cannot_exceed_log_of_its_contrastive_count():
    """With L = 3 contrastive draws sPCE saturates at log 4 on a design that is worth far more."""
    task = design_task("linear_gaussian")
    task_sharp = replace(task, log_likelihood=lambda t, x, d: 100 * task.log_likelihood(t, x, d))
    torch.manual_seed(0)
    estimate = likelihood_eig(task_sharp, LINE_DESIGNS, num_outer=2000, num_inner=3)
    assert torch.all(estimate.eig <= torch.log(torch.tensor(4.0)) + 1e-5)


def test_a_black_box_task_has_no_likelihood_bound():
    task = design_task("linear_gaussian")
    black_box = replace(task, log_likelihood=None)
    with pytest.raises(ValueError, match="has no likelihood: use a trained estimator"):
        likelihood_eig(black_box, LINE_DESIGNS)


# ------------------------------------------------------------------ EIG from amortised estimators


@pytest.fixture(scope="module")
def line_estimators():
    """NRE-B on 2 x 10^4, NPE and NLE (q(x | theta, xi)) on 10^4 simulations at designs drawn over
    [-1, 1], trained once."""
    task = design_task("linear_gaussian")
    estimators = {}
    for method, simulations in (("nre", 20_000), ("npe", 10_000), ("nle", 10_000)):
        torch.manual_seed(1)
        estimators[method], _ = train_design_estimator(method, task, simulations, TRAINING)
    torch.manual_seed(1)
    estimators["nle_marginal"], _ = train_marginal_likelihood(task, 10_000, TRAINING)
    return task, estimators


@pytest.mark.parametrize("method", ["nre", "npe", "nle"])
def test_amortised_estimators_match_the_exact_eig_at_unseen_designs(line_estimators, method):
    """One network scores every design: InfoNCE (NRE; NLE's learned likelihood contrasted over the
    prior) and Barber-Agakov (NPE) within 0.05 nats of the exact EIG, and no lower bound above it by
    more than twice its standard error."""
    task, estimators = line_estimators
    exact = task.exact_eig(LINE_DESIGNS)
    torch.manual_seed(2)
    with torch.no_grad():
        estimate = estimator_eig(estimators[method], task, LINE_DESIGNS, num_outer=4096, num_contrastive=128)
    assert estimate.method == {"nre": "nre_infonce", "npe": "npe_ba", "nle": "nle_infonce"}[method]
    assert torch.all((estimate.eig - exact).abs() < 0.05), (estimate.eig, exact)
    assert torch.all(estimate.eig <= exact + 2 * estimate.stderr), (estimate.eig, estimate.stderr, exact)
    # the design matters to the estimator as it does to the truth: the ends beat the middle
    assert estimate.eig[[0, 3]].min() > estimate.eig[1] + 0.1


def test_nle_with_its_marginal_flow_matches_the_exact_eig(line_estimators):
    """Klein et al.'s NLE estimator, E[log q(x | theta, xi) - log q(x | xi)] with two learned flows,
    within 0.05 nats of the exact EIG; without the marginal flow it is refused."""
    task, estimators = line_estimators
    torch.manual_seed(2)
    with torch.no_grad():
        estimate = estimator_eig(estimators["nle"], task, LINE_DESIGNS, num_outer=4096,
                                 marginal=estimators["nle_marginal"])
    assert estimate.method == "nle_marginal"
    assert torch.all((estimate.eig - task.exact_eig(LINE_DESIGNS)).abs() < 0.05), estimate.eig
    with pytest.raises(ValueError, match="marginal flow"):
        estimator_eig(estimators["nre"], task, LINE_DESIGNS, bound="marginal")


def test_ascent_through_the_amortised_ratio_estimator_reaches_the_exact_optimum(line_estimators):
    """Gradients flow through the simulator and the NRE's design input: 8 starts end at the
    ends of the range, whose exact EIG is the optimum 0.5 log 3."""
    task, estimators = line_estimators
    torch.manual_seed(3)
    result = multistart_ascent(
        lambda d: estimator_eig(estimators["nre"], task, d, num_outer=128, num_contrastive=32).eig,
        task.space, num_starts=8, steps=40, learning_rate=0.05, generator=torch.Generator().manual_seed(0),
        progress=False)
    best = task.exact_eig(result.final).max()
    assert best >= 0.99 * 0.5 * torch.log(torch.tensor(3.0))
    # most starts moved to an end (few began there): the ascent, not the draw of starts, found it
    assert int((result.final.abs() >= 0.98).sum()) >= 6 > int((result.paths[0].abs() >= 0.98).sum())
    assert result.paths.shape == (41, 8, 1, 1) and result.values.shape == (40, 8)
    assert torch.all((result.paths >= -1) & (result.paths <= 1))


def test_ascent_through_the_nle_surrogate_of_a_black_box_reaches_the_exact_optimum(line_estimators):
    """A black-box line (no gradient, no likelihood): the design NLE flow stands in for it. Its
    reparametrised draws match the simulator's mean and spread at a design, carry the design's
    gradient, and sPCE on the surrogate climbs to the exact optimum, the ends of the range."""
    task, estimators = line_estimators
    black_box = replace(task, log_likelihood=None, differentiable=False)
    surrogate = surrogate_task(black_box, estimators["nle"])
    torch.manual_seed(8)
    theta = task.prior.sample((4000,))
    design = torch.full((4000, 1, 1), 0.8, requires_grad=True)
    x = surrogate.simulate(theta, design)
    (gradient,) = torch.autograd.grad(x.sum(), design)
    x, real = x.detach(), task.simulate(theta, design.detach())
    assert abs(float(x.mean() - real.mean())) < 0.1 and abs(float(x.std() / real.std()) - 1) < 0.1
    assert gradient.abs().mean() > 0.1  # dx/dxi = theta_2 on the real line: about 0.8 in magnitude
    result = multistart_ascent(lambda d: likelihood_eig(surrogate, d, 64, 64).eig, task.space, num_starts=8,
                               steps=40, learning_rate=0.05, generator=torch.Generator().manual_seed(0), progress=False)
    assert task.exact_eig(result.final).max() >= 0.99 * 0.5 * torch.log(torch.tensor(3.0))
    assert int((result.final.abs() >= 0.98).sum()) >= 6 > int((result.paths[0].abs() >= 0.98).sum())
    with pytest.raises(ValueError, match="needs the design NLE"):
        surrogate_task(black_box, estimators["nre"])


# ------------------------------------------------------------------ optimisation


def test_multistart_ascent_on_spce_finds_the_exact_two_experiment_optimum():
    """T = 2: the exact optimum measures once at each end, EIG 0.5 logdet(3 I) = log 3."""
    task = design_task("linear_gaussian", 2)
    optimum = task.exact_eig(torch.tensor([[[-1.0], [1.0]]])).item()
    torch.manual_seed(4)
    result = multistart_ascent(lambda d: likelihood_eig(task, d, 64, 64).eig, task.space, num_starts=16, steps=100,
                               learning_rate=0.05, generator=torch.Generator().manual_seed(1), progress=False)
    assert task.exact_eig(result.final).max() >= 0.99 * optimum


def test_pharmacokinetic_ascent_agrees_with_exhaustive_search():
    """T = 1 over t in [0, 24] h: the best sampling time by gradient ascent through the simulator has,
    re-estimated on fresh simulations, an EIG no more than 0.02 nats below the grid search's best."""
    task = design_task("pharmacokinetic")
    torch.manual_seed(5)
    grid = task.space.grid(97)  # every 15 minutes
    on_grid = candidate_search(lambda d: likelihood_eig(task, d, 2000, 1000).eig, grid)
    result = multistart_ascent(lambda d: likelihood_eig(task, d, 64, 64).eig, task.space, num_starts=16, steps=150,
                               learning_rate=0.02, generator=torch.Generator().manual_seed(2), progress=False)
    with torch.no_grad():
        finals = likelihood_eig(task, result.final, 400, 400).eig
        best = torch.stack([grid[on_grid.argmax()], result.final[finals.argmax()]])
        fresh = likelihood_eig(task, best, 20_000, 2000)
    assert fresh.eig[1] > fresh.eig[0] - 0.02, (best.flatten(), fresh.eig, fresh.stderr)
    assert abs(best[1, 0, 0] - best[0, 0, 0]) < 3.0  # the same optimum, not another local one
    assert 0.0 < best[0, 0, 0] < 24.0  # an interior optimum: neither at the dose nor at the end


def test_a_simulator_that_ignores_its_design_is_flagged():
    """x = theta_1 + noise whatever xi is: the EIG is flat and the design step says so; the real line's
    EIG is not flagged."""
    task = design_task("linear_gaussian")
    blind = replace(task, simulator=lambda theta, design: task.simulate(theta, torch.zeros_like(design)),
                    log_likelihood=lambda theta, x, design: task.log_likelihood(theta, x, torch.zeros_like(design)))
    torch.manual_seed(7)
    candidates = task.space.grid(11)
    flat = flat_eig_warning("spce", likelihood_eig(blind, candidates, 500, 200), "analyses.a.design")
    assert flat is not None and "analyses.a.design.methods: spce's EIG is flat" in flat
    assert "does the simulator use its design?" in flat
    assert flat_eig_warning("spce", likelihood_eig(task, candidates, 500, 200), "analyses.a.design") is None


def test_the_counting_experiment_prefers_a_window_of_a_few_resolutions():
    """Too narrow a window loses the signal, too wide lets the background in: the EIG on the signal
    strength peaks inside the range, near one to two mass resolutions."""
    task = design_task("counting_cut")
    torch.manual_seed(6)
    widths = task.space.grid(40)
    eig = candidate_search(lambda d: likelihood_eig(task, d, 1000, 500).eig, widths)
    best = widths[eig.argmax(), 0, 0].item()
    assert 1.0 < best < 6.0, best
    assert eig.max() > eig[0] + 0.2 and eig.max() > eig[-1] + 0.1
