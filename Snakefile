"""sbi_core workflow: simulate -> train -> sample -> diagnose -> unfold -> report, per analysis."""

import os
import shlex
import sys

from sbi_core.schema import check_schema, read_yaml

# Jobs (local or submitted to SLURM, which passes the environment on) record the
# command line the user typed, not their own script's, in every artifact's provenance.
os.environ.setdefault("SBI_CORE_COMMAND", shlex.join(sys.argv))


# Your config is your analysis: `--configfile my.yaml` builds the analyses of my.yaml
# only; without one, the embedded default analysis runs.
if "analyses" not in config:
    DEFAULT_CONFIG = os.path.join(workflow.basedir, "config/config.yaml")
    # A syntax error with its file and line, not Snakemake's bare message.
    if workflow.is_main_process:
        read_yaml(DEFAULT_CONFIG)

    configfile: DEFAULT_CONFIG


# Schema (types, ranges, defaults) and the semantic checks (imports, files, shapes, a
# simulator probe), once per invocation in the main process: a bad config stops here
# with the key named. Jobs re-parse this file but only fill in the defaults, without
# importing torch, sbi or pyhf. Snakemake's YAML reader lets a repeated key win
# silently: the config files are read again with ours, which refuses it.
SCHEMA = workflow.source_path("workflow/schemas/config.schema.yaml")
if workflow.is_main_process:
    from sbi_core.config import check_devices, validate_config

    for path in workflow.configfiles:
        read_yaml(path)
    validate_config(config, SCHEMA, check_device=False)
else:
    check_schema(config, SCHEMA)


onstart:
    # The executor is known only now: jobs run here need the analyses' devices here
    # (a cluster's jobs get a GPU node by their `gpu` resource instead).
    if workflow.local_exec:
        check_devices(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/diagnose.smk"
include: "workflow/rules/limits.smk"
include: "workflow/rules/unfold.smk"
include: "workflow/rules/design.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
