"""Step `c2st`: one posterior against its observation's reference samples, by the published protocol.

A job per (method, observation), so that a new observation adds its own C2ST and
never reruns a method's calibration.
"""

from __future__ import annotations

import sys
import time

from sbi_core.diagnostics import c2st as classifier_two_sample_test
from sbi_core.io import provenance, write_json
from sbi_core.pipeline.common import load_reference_samples, read_posterior_samples
from sbi_core.seeding import derive_seed

__all__ = ["c2st"]


def c2st(
    name: str,
    method: str,
    observation_name: str,
    seed: int,
    num_samples: int,
    posterior: str,
    reference: str,
    output: str,
) -> None:
    """Writes the C2ST accuracy, its standard error and the sample count really used (JSON).

    As published by sbibm (Lueckmann et al., 2021): the reference is the first set,
    whose mean and standard deviation z-score both, and equal counts of each set are
    compared, all of them used. Without reference samples the accuracy is None.

    Arguments:
        name: The analysis name.
        method: The method that made the posterior.
        observation_name: The observation.
        seed: The analysis seed.
        num_samples: ``diagnostics.c2st_num_samples``, samples per set (10,000 in the benchmark).
        posterior: The posterior's InferenceData file.
        reference: The observation's reference-samples file.
        output: The JSON file.
    """
    start = time.perf_counter()
    reference_samples = load_reference_samples(reference)
    result = {"accuracy": None, "stderr": None, "num_samples": 0}
    if reference_samples is not None:
        estimate, _ = read_posterior_samples(posterior)
        num = min(len(reference_samples), len(estimate), num_samples)
        if num < num_samples:
            # A C2ST on fewer samples leans toward 0.5; say so rather than report it as asked for.
            print(
                f"{posterior}: C2ST on {num} samples per set ({len(estimate)} posterior, {len(reference_samples)} "
                f"reference samples), fewer than diagnostics.c2st_num_samples = {num_samples}",
                file=sys.stderr,
            )
        test = classifier_two_sample_test(
            reference_samples[:num], estimate[:num], seed=derive_seed(seed, "c2st", method)
        )
        result = {"accuracy": test.accuracy, "stderr": test.stderr, "num_samples": test.num_samples_b}
    write_json(
        output,
        {
            "analysis": name,
            "method": method,
            "observation": observation_name,
            **result,
            "seconds": time.perf_counter() - start,
            "provenance": provenance({"num_samples": num_samples}, seed),
        },
    )
