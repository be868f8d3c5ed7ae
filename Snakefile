"""sbi_core workflow: simulate -> train -> sample -> diagnose -> report, per analysis."""

import os
import shlex
import sys

from sbi_core.config import validate_config

# Jobs (local or submitted to SLURM, which passes the environment on) record the
# command line the user typed, not their own script's, in every artifact's provenance.
os.environ.setdefault("SBI_CORE_COMMAND", shlex.join(sys.argv))


configfile: "config/config.yaml"


# Schema (types, ranges, defaults) and semantic checks (imports, files, shapes),
# before any job runs; a bad config stops here with the key named.
validate_config(config, workflow.source_path("workflow/schemas/config.schema.yaml"))


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/diagnose.smk"
include: "workflow/rules/limits.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
