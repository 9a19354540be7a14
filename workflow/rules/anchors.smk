rule select_anchors:
    input:
        atoms=rules.parse_structures.output.atoms,
        embeddings=embeddings([config["anchors"]["reference_model"]]),
        meta=embedding_meta(),
    output:
        csv=f"{RUN}/anchors/{{anchor_set}}.csv",
    log:
        f"{LOGS}/anchors/{{anchor_set}}.log",
    benchmark:
        f"{RUN}/benchmarks/anchors/{{anchor_set}}.tsv"
    wildcard_constraints:
        anchor_set="direct|random",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/select_anchors.py",
        k=config["anchors"]["k"],
        reference=config["anchors"]["reference_model"],
        threshold=config["anchors"]["threshold_init"],
        seed=config["anchors"]["random_seed"],
    shell:
        "{params.py} {params.script} --method {wildcards.anchor_set} --k {params.k}"
        " --atoms {input.atoms} --embeddings {input.embeddings} --reference-model {params.reference}"
        " --threshold-init {params.threshold} --seed {params.seed} --meta {input.meta}"
        " --out {output.csv} > {log} 2>&1"
