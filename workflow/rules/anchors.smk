rule select_anchors:
    input:
        atoms=rules.parse_structures.output.atoms,
        embeddings=embeddings([REFERENCE]),
        meta=embedding_meta(),
        published=lambda wc: (
            [published_anchors()] if wc.anchor_set == "published" else []
        ),
    output:
        csv=f"{RUN}/anchors/{{anchor_set}}.csv",
    log:
        f"{LOGS}/anchors/{{anchor_set}}.log",
    benchmark:
        f"{RUN}/benchmarks/anchors/{{anchor_set}}.tsv"
    wildcard_constraints:
        anchor_set="direct|random|published",
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/select_anchors.py",
        k=config["anchors"]["k"],
        reference=REFERENCE,
        threshold=config["anchors"]["threshold_init"],
        seed=config["anchors"]["random_seed"],
        published=lambda wc, input: (
            f"--published {input.published}" if wc.anchor_set == "published" else ""
        ),
    shell:
        "{params.py} {params.script} --method {wildcards.anchor_set} --k {params.k}"
        " --atoms {input.atoms} --embeddings {input.embeddings} --reference-model {params.reference}"
        " --threshold-init {params.threshold} --seed {params.seed} {params.published} --meta {input.meta}"
        " --out {output.csv} > {log} 2>&1"
        f"{ON_FAILURE}"


rule anchor_overlap:
    input:
        atoms=rules.parse_structures.output.atoms,
        ours=f"{RUN}/anchors/direct.csv",
        published=published_anchors(),
    output:
        json=report(
            f"{RUN}/anchors/overlap_published.json",
            caption="../report/anchor_overlap.rst",
            category="Anchors",
        ),
    log:
        f"{LOGS}/anchors/overlap_published.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/anchor_overlap.py",
    shell:
        "{params.py} {params.script} --atoms {input.atoms} --ours {input.ours}"
        " --published {input.published} --out {output.json} > {log} 2>&1"
        f"{ON_FAILURE}"


rule anchor_sweep:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings(ANCHOR_STUDY_MODELS),
        meta=embedding_meta(ANCHOR_STUDY_MODELS),
    output:
        csv=f"{RUN}/metrics/anchor_sweep/k{{k}}.csv",
    log:
        f"{LOGS}/anchor_sweep/k{{k}}.log",
    benchmark:
        f"{RUN}/benchmarks/anchor_sweep/k{{k}}.tsv"
    wildcard_constraints:
        k=r"\d+",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/anchor_sweep.py",
        models=" ".join(ANCHOR_STUDY_MODELS),
        reference=REFERENCE,
        seeds=" ".join(str(s) for s in config["anchors"]["sweep"]["random_seeds"]),
        opts=metric_options(),
    shell:
        "{params.py} {params.script} --k {wildcards.k} --models {params.models} --embeddings {input.raw}"
        " --reference-model {params.reference} --random-seeds {params.seeds} --atoms {input.atoms}"
        " --meta {input.meta} {params.opts} --out {output.csv} > {log} 2>&1"
        f"{ON_FAILURE}"


rule reference_sensitivity:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings(ANCHOR_STUDY_MODELS),
        meta=embedding_meta(ANCHOR_STUDY_MODELS),
    output:
        csv=f"{RUN}/metrics/reference_sensitivity.csv",
        summary=f"{RUN}/metrics/reference_sensitivity_summary.csv",
    log:
        f"{LOGS}/reference_sensitivity.log",
    benchmark:
        f"{RUN}/benchmarks/reference_sensitivity.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/reference_sensitivity.py",
        models=" ".join(ANCHOR_STUDY_MODELS),
        refs=" ".join([REFERENCE, *OTHER_REFERENCES]),
        k=config["anchors"]["k"],
        opts=metric_options(),
    shell:
        "{params.py} {params.script} --k {params.k} --references {params.refs} --models {params.models}"
        " --embeddings {input.raw} --atoms {input.atoms} --meta {input.meta} {params.opts}"
        " --out {output.csv} --out-summary {output.summary} > {log} 2>&1"
        f"{ON_FAILURE}"
