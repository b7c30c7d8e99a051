rule evaluate:
    """Two-stage retrieval on the test split: Recall@K, mR and MRV with bootstrap CIs, and per-instance ranks.

    The headline re-ranks at evaluate.k_test (`auto`: the k the fine-tuning chose on validation,
    retrieval.json beside the model); the contrastive-only ranks are written beside them.
    The synthetic benchmark's runs go through evaluate_synth below.
    """
    wildcard_constraints:
        dataset=REAL_DATASETS_PATTERN,
    input:
        model=f"{FINETUNE_DIR}/{RUN_DIR}/{MODEL_DIR}/{WEIGHTS_FILE}",
        retrieval=f"{FINETUNE_DIR}/{RUN_DIR}/{MODEL_DIR}/{RETRIEVAL_FILE}",
        manifest=lambda wildcards: dataset_split(wildcards.dataset, "test"),
        tokenizer=f"{TOKENIZER_DIR}/tokenizer.json",
    output:
        metrics=f"{METRICS_DIR}/{RUN_DIR}/{METRICS_FILE}",
        ranks=f"{METRICS_DIR}/{RUN_DIR}/{RANKS_FILE}",
        ranks_itc=f"{METRICS_DIR}/{RUN_DIR}/{RANKS_ITC_FILE}",
    params:
        settings=lambda wildcards: dataset_overrides(wildcards.dataset, "evaluate"),
        model=lambda wildcards, input: os.path.dirname(input.model),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
        flags=evaluate_flags,
        tokenizer=lambda wildcards, input: os.path.dirname(input.tokenizer),
        image_root=lambda wildcards: dataset_image_root(wildcards.dataset),
        launcher=launch_flags("evaluate"),
        env=thread_env(JOB_THREADS),
    threads: JOB_THREADS
    priority: JOB_PRIORITY["evaluate"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{setting}}/{{objective}}/seed{{seed}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.env} ccrk evaluate {params.settings} --model {params.model} --tokenizer {params.tokenizer}"
        " --manifest {input.manifest} --image-root {params.image_root} {params.flags} --out {params.out} {params.launcher} > {log} 2>&1"


use rule evaluate as evaluate_synth with:
    """evaluate, plus the near-duplicate diagnostic the synthetic ground truth allows (attributes.json: how
    often each caption scores its own image above the test image that differs from it in one attribute of
    one object, per attribute and language, by ITC and by ITM), scored from the same encodings in the same job."""
    wildcard_constraints:
        dataset="synth",
    input:
        model=f"{FINETUNE_DIR}/{RUN_DIR}/{MODEL_DIR}/{WEIGHTS_FILE}",
        retrieval=f"{FINETUNE_DIR}/{RUN_DIR}/{MODEL_DIR}/{RETRIEVAL_FILE}",
        manifest=lambda wildcards: dataset_split(wildcards.dataset, "test"),
        tokenizer=f"{TOKENIZER_DIR}/tokenizer.json",
        # The ground truth (scenes/test.jsonl) is written with stats.json, in the synth rule's one directory swap.
        synth=f"{SYNTH_DIR}/stats.json",
    output:
        metrics=f"{METRICS_DIR}/{RUN_DIR}/{METRICS_FILE}",
        ranks=f"{METRICS_DIR}/{RUN_DIR}/{RANKS_FILE}",
        ranks_itc=f"{METRICS_DIR}/{RUN_DIR}/{RANKS_ITC_FILE}",
        attributes=f"{METRICS_DIR}/{RUN_DIR}/{ATTRIBUTES_FILE}",


rule evaluate_external:
    """A model trained elsewhere (external_models: open_clip or a Hugging Face dual encoder) on a dataset's test
    split, as it is: ranked by its similarities (it has no matching head), with the same metrics.json and
    ranks.npz as the trained models' evaluations, for the per-language and MRV tables and ccrk compare."""
    wildcard_constraints:
        model=layout.EXTERNAL_NAME_PATTERN,
    input:
        unpack(external_model_inputs),
        manifest=lambda wildcards: dataset_split(wildcards.dataset, "test"),
    output:
        metrics=f"{METRICS_DIR}/{EXTERNAL_RUN_DIR}/{METRICS_FILE}",
        ranks=f"{METRICS_DIR}/{EXTERNAL_RUN_DIR}/{RANKS_FILE}",
        ranks_itc=f"{METRICS_DIR}/{EXTERNAL_RUN_DIR}/{RANKS_ITC_FILE}",
    params:
        settings=lambda wildcards: dataset_overrides(wildcards.dataset, "evaluate"),
        model=external_model_flags,
        flags=lambda wildcards: " ".join(test_language_flags(wildcards.dataset)),
        image_root=lambda wildcards: dataset_image_root(wildcards.dataset),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
        launcher=launch_flags("evaluate"),
        env=thread_env(JOB_THREADS),
    threads: JOB_THREADS
    resources:
        gpu=1,
    log:
        f"{LOGS}/evaluate/{{dataset}}/{layout.EXTERNAL_DIR}/{{model}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.env} ccrk evaluate {params.settings} {params.model} --manifest {input.manifest}"
        " --image-root {params.image_root} {params.flags} --out {params.out} {params.launcher} > {log} 2>&1"


rule compare:
    """Paired bootstrap over test images: 1-to-K minus a baseline in R@1, mR and MRV, with CI and p-value."""
    input:
        a=run_file(METRICS_DIR, RANKS_FILE, objective=ONE_TO_K),
        b=run_file(METRICS_DIR, RANKS_FILE, objective="{baseline}"),
    output:
        f"{METRICS_DIR}/{COMPARE_FILE}",
    params:
        bootstrap=lambda wildcards: dataset_section("evaluate", wildcards.dataset).get("bootstrap", 1000),
    log:
        f"{LOGS}/compare/{{dataset}}/{{setting}}/seed{{seed}}/{ONE_TO_K}-vs-{{baseline}}.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk compare {input.a} {input.b} --bootstrap {params.bootstrap} --out {output} > {log} 2>&1"
