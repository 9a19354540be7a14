# One embedding job per checkpoint and shard, run by the interpreter of the checkpoint's family environment
# (family registry: platonic_mlip.families); it computes every layer the run asks of that checkpoint in one
# pass. gather_embeddings joins a model's shards into one matrix aligned with the atom table and keeps the
# model's layer.


rule embed:
    input:
        structures=rules.parse_structures.output.structures,
        weights=weights_input,
    output:
        npy=f"{RUN}/embeddings/shards/{{checkpoint}}/{{shard}}.npy",
        meta=f"{RUN}/embeddings/shards/{{checkpoint}}/{{shard}}.json",
    log:
        f"{LOGS}/embed/{{checkpoint}}/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/embed/{{checkpoint}}/{{shard}}.tsv"
    wildcard_constraints:
        checkpoint="|".join(re.escape(c) for c in CHECKPOINTS),
        shard=r"\d{4}",
    priority: CRITICAL_PATH
    conda:
        lambda wc: str(ROOT / "envs" / f"{env_of(wc.checkpoint)}.yaml")
    threads: config["embed"]["threads"]
    resources:
        gpu=lambda wc: (
            config["embed"]["gpu"]
            if FAMILIES[CHECKPOINTS[wc.checkpoint]["family"]]["gpu"]
            else 0
        ),
        mem_mb=config["embed"]["mem_mb"],
        runtime=config["embed"]["runtime"],
    params:
        py=lambda wc: python_for(env_of(wc.checkpoint)),
        script=f"{SH_SCRIPTS}/embed.py",
        layers=lambda wc: ",".join(CHECKPOINTS[wc.checkpoint]["layers"]),
        options=embed_options,
        weights_file=weights_file_option,
        device=config["embed"]["device"],
        batch_atoms=config["embed"]["batch_atoms"],
        shard_structures=config["embed"]["shard_structures"] or 0,
        on_unsupported=config["embed"]["on_unsupported"],
    shell:
        "{params.py} {params.script} --model {wildcards.checkpoint} --layers {params.layers}"
        " --options {params.options:q} {params.weights_file}"
        " --structures {input.structures} --device {params.device} --threads {threads}"
        " --batch-atoms {params.batch_atoms} --shard {wildcards.shard}"
        " --shard-structures {params.shard_structures} --on-unsupported {params.on_unsupported}"
        " --out-npy {output.npy} --out-json {output.meta}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


rule gather_embeddings:
    input:
        structures=rules.parse_structures.output.structures,
        npy=lambda wc: shard_files(checkpoint_of(wc.model), "npy"),
        meta=lambda wc: shard_files(checkpoint_of(wc.model), "json"),
    output:
        npy=f"{RUN}/embeddings/{{model}}.npy",
        meta=f"{RUN}/embeddings/{{model}}.json",
    log:
        f"{LOGS}/gather_embeddings/{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/gather_embeddings/{{model}}.tsv"
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/gather_embeddings.py",
        layer=lambda wc: MODELS[wc.model]["layer"],
        label=lambda wc: MODELS[wc.model].get("label", wc.model),
    shell:
        "{params.py} {params.script} --structures {input.structures} --npy {input.npy}"
        " --json {input.meta} --model {wildcards.model:q} --layer {params.layer} --label {params.label:q}"
        " --out-npy {output.npy} --out-json {output.meta} > {log} 2>&1"
        f"{ON_FAILURE}"
