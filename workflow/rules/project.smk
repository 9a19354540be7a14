rule project:
    input:
        embeddings=f"{RUN}/embeddings/{{model}}.npy",
        anchors=f"{RUN}/anchors/{{anchor_set}}.csv",
    output:
        npy=f"{RUN}/platonic/{{anchor_set}}/{{model}}.npy",
    log:
        f"{LOGS}/project/{{anchor_set}}/{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/project/{{anchor_set}}/{{model}}.tsv"
    wildcard_constraints:
        anchor_set="direct|random|published",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/project.py",
    shell:
        "{params.py} {params.script} --embeddings {input.embeddings} --anchors {input.anchors}"
        " --out {output.npy} > {log} 2>&1"
