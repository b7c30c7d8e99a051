# ccrk: the whole experiment DAG. Thin on purpose: the rules live in
# workflow/rules/, helpers in workflow/rules/common.smk, and every rule calls
# the `ccrk` command line (the library knows nothing of Snakemake).

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


rule all:
    input:
        all_targets(),
    default_target: True
