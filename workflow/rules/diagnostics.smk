# Diagnostics that need the synthetic benchmark's ground truth (no real benchmark has one).


rule attributes:
    """Near-duplicate diagnostic of a synthetic-benchmark model: how often each test caption scores its own image
    above the test image that differs from it in one attribute of one object, per attribute and language, by the
    contrastive similarity and by the matching head (bootstrap intervals over pairs)."""
    input:
        model=f"{FINETUNE_DIR}/synth/{{setting}}/{{objective}}/seed{{seed}}/model/model.safetensors",
        manifest=dataset_split("synth", "test"),
        # The ground truth (scenes/test.jsonl) is written with stats.json, in the synth rule's one directory swap.
        synth=f"{SYNTH_DIR}/stats.json",
        tokenizer=f"{TOKENIZER_DIR}/tokenizer.json",
        # ccrk evaluate replaces its run directory as a whole (ccrk.atomic): this file goes in after it, and is
        # rewritten whenever the evaluation is.
        metrics=f"{METRICS_DIR}/synth/{{setting}}/{{objective}}/seed{{seed}}/metrics.json",
    output:
        f"{METRICS_DIR}/synth/{{setting}}/{{objective}}/seed{{seed}}/attributes.json",
    params:
        settings=dataset_overrides("synth", "evaluate"),
        model=lambda wildcards, input: os.path.dirname(input.model),
        tokenizer=lambda wildcards, input: os.path.dirname(input.tokenizer),
        scenes=lambda wildcards, input: os.path.join(os.path.dirname(input.synth), "scenes", "test.jsonl"),
        image_root=lambda wildcards, input: os.path.dirname(input.synth),
        flags=attributes_flags,
        env=thread_env(JOB_THREADS),
    threads: JOB_THREADS
    log:
        f"{LOGS}/attributes/synth/{{setting}}/{{objective}}/seed{{seed}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.env} ccrk attributes {params.settings} --model {params.model} --tokenizer {params.tokenizer}"
        " --manifest {input.manifest} --scenes {params.scenes} --image-root {params.image_root} {params.flags}"
        " --out {output} > {log} 2>&1"
