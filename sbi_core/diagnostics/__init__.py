"""Calibration and accuracy diagnostics of posterior estimates: SBC, expected coverage, TARP, C2ST, PPC.

Every function takes whole batches (``N`` test simulations x ``S`` samples) as
arrays and returns JSON-serialisable numbers, so one batched sampling pass
serves all of them.
"""

from sbi_core.diagnostics.c2st import C2STResult, c2st, c2st_many
from sbi_core.diagnostics.calibration import Calibration, calibrate
from sbi_core.diagnostics.coverage import VERDICTS, coverage_band, coverage_verdict, expected_coverage, hpd_credibility
from sbi_core.diagnostics.ppc import posterior_predictive_check
from sbi_core.diagnostics.sbc import sbc_default_num_bins, sbc_rank_histogram, sbc_ranks, sbc_uniformity
from sbi_core.diagnostics.tarp import tarp, tarp_atc, tarp_ecp, tarp_ranks, tarp_uniform_references

__all__ = [
    "VERDICTS",
    "C2STResult",
    "Calibration",
    "c2st",
    "c2st_many",
    "calibrate",
    "coverage_band",
    "coverage_verdict",
    "expected_coverage",
    "hpd_credibility",
    "posterior_predictive_check",
    "sbc_default_num_bins",
    "sbc_rank_histogram",
    "sbc_ranks",
    "sbc_uniformity",
    "tarp",
    "tarp_atc",
    "tarp_ecp",
    "tarp_ranks",
    "tarp_uniform_references",
]
