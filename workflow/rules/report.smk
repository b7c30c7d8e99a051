rule tables:
    """The paper's tables from every evaluation: Table 1 (paper beside reproduced), per language, MRV, significance."""
    input:
        metrics=metrics_files(),
        compare=compare_files(),
    output:
        tables=table_files(),
        summary=expand(f"{SUMMARY_DIR}/{{objective}}.json", objective=OBJECTIVES),
        plots=f"{PLOTS_DIR}/recall_per_language.csv",
    params:
        metrics_dir=lambda wildcards: METRICS_DIR,
        out=lambda wildcards, output: os.path.dirname(output.tables[0]),
        summary=lambda wildcards, output: os.path.dirname(output.summary[0]),
        plots=lambda wildcards, output: os.path.dirname(output.plots),
    log:
        f"{LOGS}/tables.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk tables --metrics-dir {params.metrics_dir} --out {params.out} --summary-dir {params.summary}"
        " --plots-dir {params.plots} > {log} 2>&1"


rule figures:
    """Recall per language, rank-std distribution, rank scatter across languages, pre-training loss curves."""
    input:
        metrics=metrics_files(),
        pretrained=expand(
            f"{PRETRAIN_DIR}/{{objective}}/seed{{seed}}/model/model.safetensors", objective=OBJECTIVES, seed=SEEDS
        ),
    output:
        recall=report(f"{FIGURES_DIR}/recall_per_language.png", caption="../report/recall_per_language.rst",
                      category="Figures"),
        rank_std=report(f"{FIGURES_DIR}/rank_std.png", caption="../report/rank_std.rst", category="Figures"),
        rank_scatter=report(f"{FIGURES_DIR}/rank_scatter.png", caption="../report/rank_scatter.rst",
                            category="Figures"),
        loss=report(f"{FIGURES_DIR}/loss_curves.png", caption="../report/loss_curves.rst", category="Figures"),
        pdf=expand(f"{FIGURES_DIR}/{{figure}}.pdf", figure=FIGURES),
    params:
        metrics_dir=lambda wildcards: METRICS_DIR,
        pretrain_dir=lambda wildcards: PRETRAIN_DIR,
        out=lambda wildcards: FIGURES_DIR,
    log:
        f"{LOGS}/figures.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk figures --metrics-dir {params.metrics_dir} --pretrain-dir {params.pretrain_dir} --out {params.out} > {log} 2>&1"
