rule pretrain:
    """Pre-train the model with one contrastive objective and seed (plus the shared ITM and MLM terms).

    The run directory keeps its checkpoints, so a rerun after an interruption
    resumes from the newest one (`--resume`; exact, see ccrk.train); a rerun
    because the settings changed starts over (`--restart-on-change`: the old
    checkpoints are deleted, not refused).
    """
    input:
        **pretrain_inputs(),
        tokenizer=f"{TOKENIZER_DIR}/tokenizer.json",
    output:
        model=f"{PRETRAIN_DIR}/{PRETRAIN_RUN_DIR}/{MODEL_DIR}/{WEIGHTS_FILE}",
        # the learning curve (validation after every epoch), on the synthetic corpus
        **({} if real_corpus() else {"validation": f"{PRETRAIN_DIR}/{PRETRAIN_RUN_DIR}/{VAL_LOG}"}),
    params:
        settings=config_overrides("model", "objective", "train"),
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output.model)),
        tokenizer=lambda wildcards, input: os.path.dirname(input.tokenizer),
        data=pretrain_data_flags(),
        launcher=launch_flags("pretrain"),
        env=thread_env(JOB_THREADS),
    threads: JOB_THREADS
    # Pre-training first, then fine-tuning, then evaluation (JOB_PRIORITY): the longest jobs start
    # earliest, so the DAG ends on short jobs on every core instead of one late chain on one.
    priority: JOB_PRIORITY["pretrain"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/pretrain/{{objective}}/seed{{seed}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.env} ccrk pretrain {params.settings} {params.data}"
        " --tokenizer {params.tokenizer} --objective {wildcards.objective} --seed {wildcards.seed}"
        " --out {params.out} --resume --restart-on-change --no-progress {params.launcher} > {log} 2>&1"


rule finetune:
    """Fine-tune a pre-trained model for retrieval under one setting; the model is selected on validation.

    Selection includes the starting point (epoch 0); the k_test re-ranking depth is then chosen on
    validation too and recorded in retrieval.json beside the weights.
    """
    input:
        start=finetune_start,
        train=lambda wildcards: finetune_train_manifest(wildcards.dataset, wildcards.setting),
        val=lambda wildcards: dataset_split(wildcards.dataset, "val"),
        tokenizer=f"{TOKENIZER_DIR}/tokenizer.json",
    output:
        model=f"{FINETUNE_DIR}/{RUN_DIR}/{MODEL_DIR}/{WEIGHTS_FILE}",
        retrieval=f"{FINETUNE_DIR}/{RUN_DIR}/{MODEL_DIR}/{RETRIEVAL_FILE}",
    params:
        settings=lambda wildcards: " ".join(
            [dataset_overrides(wildcards.dataset, "model"), config_overrides("train"),
             section_flags("finetune", finetune_section(wildcards.dataset, wildcards.setting))]
        ),
        pretrained=lambda wildcards, input: os.path.dirname(input.start),
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output.model)),
        flags=finetune_flags,
        tokenizer=lambda wildcards, input: os.path.dirname(input.tokenizer),
        image_root=lambda wildcards: dataset_image_root(wildcards.dataset),
        launcher=launch_flags("finetune"),
        env=thread_env(JOB_THREADS),
    threads: JOB_THREADS
    priority: JOB_PRIORITY["finetune"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/finetune/{{dataset}}/{{setting}}/{{objective}}/seed{{seed}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.env} ccrk finetune {params.settings} --pretrained {params.pretrained} {params.flags}"
        " --train-manifest {input.train} --val-manifest {input.val} --image-root {params.image_root}"
        " --tokenizer {params.tokenizer} --seed {wildcards.seed} --out {params.out} --resume --restart-on-change"
        " --no-progress {params.launcher} > {log} 2>&1"
