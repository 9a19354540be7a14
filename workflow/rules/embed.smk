# One embedding job per model and shard, run by the interpreter of the model's family environment;
# gather_embeddings joins a model's shards into one matrix aligned with the atom table.
for _family in FAMILIES:
    if not models_of(_family):
        continue

    rule:
        name:
            f"embed_{_family}"
        input:
            structures=rules.parse_structures.output.structures,
            weights=weights_input,
        output:
            npy=f"{RUN}/embeddings/shards/{{model}}/{{shard}}.npy",
            meta=f"{RUN}/embeddings/shards/{{model}}/{{shard}}.json",
        log:
            f"{LOGS}/embed/{{model}}/{{shard}}.log",
        benchmark:
            f"{RUN}/benchmarks/embed/{{model}}/{{shard}}.tsv"
        wildcard_constraints:
            model="|".join(models_of(_family)),
            shard=r"\d{4}",
        conda:
            f"../../envs/{_family}.yaml"
        threads: config["embed"]["threads"]
        resources:
            gpu=config["embed"]["gpu"],
            mem_mb=config["embed"]["mem_mb"],
            runtime=config["embed"]["runtime"],
        params:
            py=python_for(_family),
            script=f"{SCRIPTS}/embed.py",
            options=embed_options,
            device=config["embed"]["device"],
            batch_atoms=config["embed"]["batch_atoms"],
            shard_structures=config["embed"]["shard_structures"] or 0,
            on_unsupported=config["embed"]["on_unsupported"],
        shell:
            "{params.py} {params.script} --model {wildcards.model} --options {params.options:q}"
            " --structures {input.structures} --device {params.device} --threads {threads}"
            " --batch-atoms {params.batch_atoms} --shard {wildcards.shard}"
            " --shard-structures {params.shard_structures} --on-unsupported {params.on_unsupported}"
            " --out-npy {output.npy} --out-json {output.meta}"
            " > {log} 2>&1"


rule gather_embeddings:
    input:
        structures=rules.parse_structures.output.structures,
        npy=lambda wc: shard_files(wc.model, "npy"),
        meta=lambda wc: shard_files(wc.model, "json"),
    output:
        npy=f"{RUN}/embeddings/{{model}}.npy",
        meta=f"{RUN}/embeddings/{{model}}.json",
    log:
        f"{LOGS}/gather_embeddings/{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/gather_embeddings/{{model}}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/gather_embeddings.py",
    shell:
        "{params.py} {params.script} --structures {input.structures} --npy {input.npy}"
        " --json {input.meta} --out-npy {output.npy} --out-json {output.meta} > {log} 2>&1"
