# The budget study: the embedded comparison (every objective, seed and setting
# of config/config.yaml) at three pre-training lengths, then R@1 and MRV against
# pre-training steps per objective. Outside `make reproduce`:
#
#   snakemake -s workflow/budget.smk --configfile config/budget.yaml     (make budget)
#
# Each length is the whole DAG of ../Snakefile as a module with its own
# train.epochs and results under results/runs/<name>-e<epochs>/; the length
# equal to the default's own is the default run itself (results/), which
# `make reproduce` already built. The data and the tokenizer are shared (their
# rules come from the first length's module only; each module's own targets
# `all`, `benchmark`, `experiments` are left out: `budget` is the target).

configfile: "config/config.yaml"


include: "rules/common.smk"


EPOCHS = config["budget"]["epochs"]


module short:
    snakefile:
        "../Snakefile"
    config:
        length_config(EPOCHS[0])


use rule * from short exclude all, benchmark, experiments as short_*


module middle:
    snakefile:
        "../Snakefile"
    config:
        length_config(EPOCHS[1])


use rule * from middle exclude all, benchmark, experiments, synth, tokenizer, download, corpus, translate as middle_*


module long:
    snakefile:
        "../Snakefile"
    config:
        length_config(EPOCHS[2])


use rule * from long exclude all, benchmark, experiments, synth, tokenizer, download, corpus, translate as long_*


rule budget:
    """R@1 and MRV against pre-training steps per objective, with 1-to-K's paired differences at each length."""
    default_target: True
    input:
        rules.short_tables.output,
        rules.short_figures.output,
        rules.middle_tables.output,
        rules.middle_figures.output,
        rules.long_tables.output,
        rules.long_figures.output,
    output:
        table=f"{budget_dir()}/budget.csv",
        markdown=f"{budget_dir()}/budget.md",
        figure=report(f"{budget_dir()}/budget.png", caption="report/budget.rst", category="Budget"),
        pdf=f"{budget_dir()}/budget.pdf",
    params:
        lengths=budget_length_flags(),
        out=lambda wildcards, output: os.path.dirname(output.table),
    log:
        f"{logs_root(budget_name())}/budget.log",
    conda:
        # CONDA_ENV is relative to rules/; this rule is declared one level up.
        "envs/ccrk.yaml"
    shell:
        "ccrk budget {params.lengths} --out {params.out} > {log} 2>&1"
