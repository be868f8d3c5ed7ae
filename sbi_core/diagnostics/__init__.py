"""Calibration and accuracy diagnostics of posterior estimates: SBC and C2ST."""

from sbi_core.diagnostics.c2st import c2st
from sbi_core.diagnostics.sbc import sbc_default_num_bins, sbc_rank_histogram, sbc_ranks, sbc_uniformity

__all__ = ["c2st", "sbc_default_num_bins", "sbc_rank_histogram", "sbc_ranks", "sbc_uniformity"]
