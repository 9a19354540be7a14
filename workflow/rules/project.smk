rule project:
    input:
        embeddings=f"{RUN}/embeddings/{{model}}.npy",
        anchors=lambda wc: f"{RUN}/anchors/{anchors_of_space(wc.anchor_set)}.csv",
        meta=f"{RUN}/embeddings/{{model}}.json",
        atoms=f"{RUN}/structures/atoms.csv",
    output:
        npy=f"{RUN}/platonic/{{anchor_set}}/{{model}}.npy",
    log:
        f"{LOGS}/project/{{anchor_set}}/{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/project/{{anchor_set}}/{{model}}.tsv"
    wildcard_constraints:
        anchor_set="|".join(SPACES),
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/project.py",
        center=lambda wc: "--center" if wc.anchor_set.endswith(CENTRED) else "",
    shell:
        "{params.py} {params.script} --embeddings {input.embeddings} --anchors {input.anchors}"
        " --atoms {input.atoms} --meta {input.meta} --model {wildcards.model:q} {params.center} --out {output.npy}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"
