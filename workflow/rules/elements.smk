# Element-level embeddings in the shared space (paper Fig. 4e-f data).


rule element_embeddings:
    input:
        atoms=rules.parse_structures.output.atoms,
        platonic=platonic(PRIMARY_ANCHORS),
        meta=embedding_meta(),
    output:
        npz=f"{RUN}/elements/element_embeddings.npz",
        csv=f"{RUN}/elements/similarity_correlation.csv",
    log:
        f"{LOGS}/element_embeddings.log",
    benchmark:
        f"{RUN}/benchmarks/element_embeddings.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/element_embeddings.py",
        models=" ".join(MODELS),
    shell:
        "{params.py} {params.script} --models {params.models} --platonic {input.platonic}"
        " --atoms {input.atoms} --meta {input.meta} --out-npz {output.npz} --out-csv {output.csv}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"
