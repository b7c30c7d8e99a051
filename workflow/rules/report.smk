rule tables:
    """The paper's tables from every evaluation: Table 1 (paper beside reproduced), per language, MRV, significance,
    and each training seed's headline R@1 with the range across seeds (seed agreement); external models (external_models) get rows of their own in the per-language and MRV tables."""
    input:
        metrics=metrics_files(),
        compare=compare_files(),
        external=external_metrics_files(),
    output:
        tables=table_files(),
        summary=expand(f"{SUMMARY_DIR}/{{objective}}.json", objective=OBJECTIVES),
        plots=f"{PLOTS_DIR}/recall_per_language.csv",
    params:
        compare=lambda wildcards, input: f"--compare {' '.join(input.compare)}" if input.compare else "",
        external=lambda wildcards, input: f"--external {' '.join(input.external)}" if input.external else "",
        out=lambda wildcards, output: os.path.dirname(output.tables[0]),
        summary=lambda wildcards, output: os.path.dirname(output.summary[0]),
        plots=lambda wildcards, output: os.path.dirname(output.plots),
    log:
        f"{LOGS}/tables.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk tables --metrics {input.metrics} {params.compare} {params.external} --out {params.out}"
        " --summary-dir {params.summary} --plots-dir {params.plots} > {log} 2>&1"


rule figures:
    """Recall per language, rank-std distribution, rank scatter across languages, pre-training loss curves;
    with the synthetic benchmark also the near-duplicate preference per attribute (pooled and per language)
    and the learning curves of pre-training (validation R@1, MRV, ITM AUC per epoch)."""
    input:
        metrics=metrics_files(),
        pretrained=expand(
            f"{PRETRAIN_DIR}/{PRETRAIN_RUN_DIR}/{MODEL_DIR}/{WEIGHTS_FILE}", objective=OBJECTIVES, seed=SEEDS
        ),
        attributes=attribute_files(),
        validation=pretrain_validation_logs(),
    output:
        recall=report(f"{FIGURES_DIR}/recall_per_language.png", caption="../report/recall_per_language.rst",
                      category="Figures"),
        rank_std=report(f"{FIGURES_DIR}/rank_std.png", caption="../report/rank_std.rst", category="Figures"),
        rank_scatter=report(f"{FIGURES_DIR}/rank_scatter.png", caption="../report/rank_scatter.rst",
                            category="Figures"),
        loss=report(f"{FIGURES_DIR}/loss_curves.png", caption="../report/loss_curves.rst", category="Figures"),
        pdf=expand(f"{FIGURES_DIR}/{{figure}}.pdf", figure=FIGURES + attribute_figures() + learning_figures()),
        **attribute_figure_reports(),
    params:
        # Each run's metrics.jsonl, finished once its model is written (the model is the input: a declared
        # output would be deleted if the job failed, and with it the log a resumed run appends to).
        pretrain_logs=lambda wildcards: " ".join(pretrain_logs()),
        out=lambda wildcards: FIGURES_DIR,
        attributes=lambda wildcards, input: f"--attributes {' '.join(input.attributes)}" if input.attributes else "",
    log:
        f"{LOGS}/figures.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk figures --metrics {input.metrics} --pretrain-logs {params.pretrain_logs} {params.attributes}"
        " --out {params.out} > {log} 2>&1"
