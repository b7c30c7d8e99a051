# -- the embedded default ------------------------------------------------------


rule synth:
    """Generate the synthetic multilingual benchmark (the embedded default)."""
    output:
        stats=f"{SYNTH_DIR}/stats.json",
        manifests=expand(f"{SYNTH_DIR}/{{split}}.jsonl", split=["pretrain", "train", "val", "test"]),
    params:
        settings=config_overrides("synth"),
        out=lambda wildcards, output: os.path.dirname(output.stats),
    log:
        f"{LOGS}/synth.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk synth {params.settings} --out {params.out} > {log} 2>&1"


if _TOKENIZER_FROM:

    rule tokenizer:
        """Save the pretrained text encoder's tokenizer (XLM-R's at paper scale) where every job reads it."""
        output:
            config_file=f"{TOKENIZER_DIR}/tokenizer.json",
        params:
            settings=config_overrides("tokenizer"),
            out=lambda wildcards, output: os.path.dirname(output.config_file),
        log:
            f"{LOGS}/tokenizer.log",
        conda:
            CONDA_ENV
        shell:
            "ccrk tokenizer {params.settings} --out {params.out} > {log} 2>&1"

else:

    rule tokenizer:
        """Train the subword tokenizer on the pre-training captions of every language."""
        input:
            f"{SYNTH_DIR}/pretrain.jsonl",
        output:
            config_file=f"{TOKENIZER_DIR}/tokenizer.json",
        params:
            settings=config_overrides("tokenizer"),
            out=lambda wildcards, output: os.path.dirname(output.config_file),
        log:
            f"{LOGS}/tokenizer.log",
        conda:
            CONDA_ENV
        shell:
            "ccrk tokenizer {params.settings} --manifest {input} --out {params.out} > {log} 2>&1"


# -- the real benchmarks -------------------------------------------------------


rule download:
    """Fetch one source of ccrk's registry into the DVC-tracked data root (resumable, pinned where upstream
    allows); a source behind a form or login is checked instead, and the log names the directory to fill.
    A source that reads another's files (SOURCE_NEEDS) runs after it."""
    input:
        lambda wildcards: [stamp(needed) for needed in SOURCE_NEEDS.get(wildcards.source, [])],
    output:
        stamp(f"{{source}}"),
    params:
        root=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),  # data/.ccrk/<source>.json
    log:
        f"{LOGS}/download/{{source}}.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk download --source {wildcards.source} --root {params.root} --stamp {output} > {log} 2>&1"


for _dataset in PREPARED_SPLITS:

    rule:
        name:
            f"prepare_{_dataset}"
        input:
            [stamp(source) for source in DATASET_SOURCES[_dataset]],
        output:
            info=f"{MANIFEST_DIR}/{_dataset}/prepare_info.json",
            manifests=[f"{MANIFEST_DIR}/{_dataset}/{split}.jsonl" for split in PREPARED_SPLITS[_dataset]],
        params:
            dataset=_dataset,
            root=lambda wildcards, input: os.path.dirname(os.path.dirname(input[0])),
            out=lambda wildcards, output: os.path.dirname(output.info),
        log:
            f"{LOGS}/prepare/{_dataset}.log",
        conda:
            CONDA_ENV
        shell:
            "ccrk prepare --dataset {params.dataset} --root {params.root} --out {params.out} --check-images > {log} 2>&1"


# -- the pre-training corpus ---------------------------------------------------


rule corpus:
    """Crawl Conceptual Captions into webdataset shards (img2dataset, incremental: a rerun continues)."""
    input:
        stamp("cc3m-urls"),
    output:
        f"{CORPUS_SHARDS}/fetch_done.json",
    params:
        tsv=f"{DATA_DIR}/cc3m/Train_GCC-training.tsv",
        out=lambda wildcards, output: os.path.dirname(output[0]),
        flags=lambda wildcards: " ".join(
            f"--{key.replace('_', '-')} {value}" for key, value in (config.get("corpus") or {}).items() if value is not None
        ),
    threads: 16
    log:
        f"{LOGS}/corpus.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk corpus --tsv {params.tsv} --out {params.out} {params.flags} > {log} 2>&1"


rule translate:
    """Translate every shard's English captions into the other languages with M2M100 (a GPU job;
    resumable per shard). CCR^6 and CCR^10 read the same translations, each its own languages."""
    input:
        f"{CORPUS_SHARDS}/fetch_done.json",
    output:
        f"{CORPUS_CAPTIONS}/translate_report.json",
    params:
        settings=config_overrides("translate"),
        shards=lambda wildcards, input: os.path.dirname(input[0]),
        out=lambda wildcards, output: os.path.dirname(output[0]),
        launcher=launch_flags("translate"),
        env=thread_env(JOB_THREADS),
    threads: JOB_THREADS
    resources:
        gpu=1,
    log:
        f"{LOGS}/translate.log",
    conda:
        CONDA_ENV
    shell:
        "{params.env} ccrk translate {params.settings} --shards {params.shards} --out {params.out} {params.launcher} > {log} 2>&1"
