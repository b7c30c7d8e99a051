rule synth:
    """Generate the synthetic multilingual benchmark (the embedded default)."""
    output:
        stats=f"{SYNTH_DIR}/stats.json",
        manifests=expand(f"{SYNTH_DIR}/{{split}}.jsonl", split=["pretrain", "train", "val", "test"]),
    params:
        settings=config_overrides("synth"),
        out=lambda wildcards, output: os.path.dirname(output.stats),
    log:
        "logs/synth.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk synth {params.settings} --out {params.out} > {log} 2>&1"


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
        "logs/tokenizer.log",
    conda:
        CONDA_ENV
    shell:
        "ccrk tokenizer {params.settings} --manifest {input} --out {params.out} > {log} 2>&1"
