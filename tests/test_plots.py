"""Tests of sbi_core.plots: each function writes a PNG and leaves no open figure."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from sbi_core import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000
    assert plt.get_fignums() == []


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    plt.close("all")


@pytest.mark.parametrize("with_reference", [False, True])
@pytest.mark.parametrize("with_truth", [False, True])
def test_plot_pair(tmp_path, with_reference, with_truth):
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(500, 3))
    reference = rng.normal(size=(400, 3)) + 0.5 if with_reference else None
    truth = np.zeros(3) if with_truth else None
    path = tmp_path / "pair.png"
    assert plots.plot_pair(samples, ["a", "b", "c"], path, reference=reference, truth=truth, title="pair") is None
    assert_png(path)


def test_plot_pair_many_parameters_and_nested_path(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "sub" / "pair.png"
    plots.plot_pair(rng.normal(size=(3000, 10)), [f"p{i}" for i in range(10)], path, truth=np.zeros(10))
    assert_png(path)


def test_plot_pair_one_parameter(tmp_path):
    path = tmp_path / "pair.png"
    plots.plot_pair(np.random.default_rng(0).normal(size=(100, 1)), ["a"], path, reference=np.zeros((10, 1)))
    assert_png(path)


def test_plot_pair_bad_input_closes_nothing_open(tmp_path):
    with pytest.raises(ValueError, match="parameter_names"):
        plots.plot_pair(np.zeros((10, 2)), ["a"], tmp_path / "pair.png")
    with pytest.raises(ValueError, match="truth"):
        plots.plot_pair(np.zeros((10, 2)), ["a", "b"], tmp_path / "pair.png", truth=np.zeros(3))
    assert plt.get_fignums() == []


@pytest.mark.parametrize("dim, num_bins", [(1, None), (5, None), (2, 7)])
def test_plot_sbc_ranks(tmp_path, dim, num_bins):
    ranks = np.random.default_rng(0).integers(0, 101, size=(300, dim))
    path = tmp_path / "sbc.png"
    assert plots.plot_sbc_ranks(ranks, 100, [f"p{i}" for i in range(dim)], path, num_bins=num_bins) is None
    assert_png(path)


def test_plot_loss(tmp_path):
    path = tmp_path / "loss.png"
    assert plots.plot_loss([3.0, 2.0, 1.5, 1.4], [3.1, 2.2, 1.9, 2.0], path, title="NPE") is None
    assert_png(path)
    plots.plot_loss([3.0, 2.0], [], tmp_path / "train_only.png")
    assert_png(tmp_path / "train_only.png")


def test_plot_calibration_curve(tmp_path):
    levels = np.linspace(0.05, 0.95, 19)
    plots.plot_calibration_curve(levels, levels**1.2, levels - 0.05, levels + 0.05, tmp_path / "c.png",
                                 xlabel="level", ylabel="coverage", band_label="95%", title="t")
    assert_png(tmp_path / "c.png")


def test_plot_posterior_predictive(tmp_path):
    from sbi_core.diagnostics import posterior_predictive_check

    rng = np.random.default_rng(0)
    check = posterior_predictive_check(rng.normal(size=12), rng.normal(size=(300, 12)))
    plots.plot_posterior_predictive(check, tmp_path / "sub" / "ppc.png", title="obs")
    assert_png(tmp_path / "sub" / "ppc.png")
