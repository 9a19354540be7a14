# One embedding job per model, run by the interpreter of the model's family environment.
for _family in FAMILIES:
    if not models_of(_family):
        continue

    rule:
        name:
            f"embed_{_family}"
        input:
            structures=rules.parse_structures.output.structures,
        output:
            npy=f"{RUN}/embeddings/{{model}}.npy",
            meta=f"{RUN}/embeddings/{{model}}.json",
        log:
            f"{LOGS}/embed/{{model}}.log",
        benchmark:
            f"{RUN}/benchmarks/embed/{{model}}.tsv"
        wildcard_constraints:
            model="|".join(models_of(_family)),
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
            options=lambda wc: json.dumps(config["model_options"].get(wc.model, {})),
            device=config["embed"]["device"],
            batch_atoms=config["embed"]["batch_atoms"],
        shell:
            "{params.py} {params.script} --model {wildcards.model} --options {params.options:q}"
            " --structures {input.structures} --device {params.device} --threads {threads}"
            " --batch-atoms {params.batch_atoms} --out-npy {output.npy} --out-json {output.meta}"
            " > {log} 2>&1"
