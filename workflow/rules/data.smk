rule synth:
    """Generate the synthetic multilingual benchmark (the embedded default)."""
    output:
        stats=f"{SYNTH_DIR}/stats.json",
        manifests=expand(f"{SYNTH_DIR}/{{split}}.jsonl", split=["pretrain", "train", "val", "test"]),
    params:
        settings=config_overrides("synth"),
        out=SYNTH_DIR,
    log:
        "logs/synth.log",
    shell:
        "ccrk synth {params.settings} --out {params.out} > {log} 2>&1"


rule tokenizer:
    """Train the subword tokenizer on the pre-training captions of every language."""
    input:
        f"{SYNTH_DIR}/pretrain.jsonl",
    output:
        f"{TOKENIZER_DIR}/tokenizer.json",
    params:
        settings=config_overrides("tokenizer"),
        out=TOKENIZER_DIR,
    log:
        "logs/tokenizer.log",
    shell:
        "ccrk tokenizer {params.settings} --manifest {input} --out {params.out} > {log} 2>&1"
