# ccrk: the whole experiment DAG. Thin on purpose: the rules live in
# workflow/rules/, helpers in workflow/rules/common.smk, and every rule calls
# the `ccrk` command line (the library knows nothing of Snakemake).
#
#   data (synth) -> tokenizer -> pretrain {objective} x {seed}
#     -> finetune {dataset} x {setting} -> evaluate (synthetic: + near-duplicate diagnostic)
#     -> compare -> tables + figures

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True


# Targets of the DVC stages (dvc.yaml): each stage runs one of them.
rule benchmark:
    input:
        benchmark_targets(),


rule experiments:
    input:
        metrics_files(),
        compare_files(),
        attribute_files(),
        external_metrics_files(),
