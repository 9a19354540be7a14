rule pairwise_metrics:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings(),
        meta=embedding_meta(),
        platonic=[p for s in SPACES for p in platonic(s)],
    output:
        csv=f"{RUN}/metrics/pairwise.csv",
        sample=f"{RUN}/metrics/sample.csv",
    log:
        f"{LOGS}/pairwise_metrics.log",
    benchmark:
        f"{RUN}/benchmarks/pairwise_metrics.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/pairwise_metrics.py",
        models=" ".join(MODELS),
        sets=" ".join(SPACES),
        m=config["metrics"],
        u=config["metrics"]["uncertainty"],
        weights=json.dumps(config["metrics"]["composite_weights"]),
        normalize="" if config["metrics"]["knn_normalize"] else "--no-knn-normalize",
        beyond="--beyond-element" if config["metrics"]["beyond_element"] else "",
    shell:
        "{params.py} {params.script} --models {params.models}"
        " --raw {input.raw} --anchor-sets {params.sets} --platonic {input.platonic}"
        " --atoms {input.atoms} --n-sample {params.m[n_sample]} --seed {params.m[sample_seed]}"
        " --k {params.m[knn_k]} --knn-tie-tol {params.m[knn_tie_tol]} {params.normalize} {params.beyond}"
        " --composite-weights {params.weights:q} --repeats {params.u[repeats]} --level {params.u[level]} --resample-seed {params.u[seed]}"
        " --workers {threads} --meta {input.meta} --out {output.csv} --out-sample {output.sample}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


# OURS: the intervals of every metric from redrawn atom samples, as a readable table
rule pairwise_ci_table:
    input:
        pairwise=rules.pairwise_metrics.output.csv,
    output:
        html=report(
            f"{RUN}/metrics/pairwise_ci.html",
            caption="../report/pairwise_ci.rst",
            category="Alignment",
            subcategory="tables",
        ),
    log:
        f"{LOGS}/pairwise_ci_table.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/pairwise_ci_table.py",
        models=" ".join(MODELS),
        labels=LABELS,
    shell:
        "{params.py} {params.script} --pairwise {input.pairwise} --models {params.models}"
        " --labels {params.labels:q} --out {output.html} > {log} 2>&1"
        f"{ON_FAILURE}"


# OURS: every pairwise metric and space as an interactive heatmap, the interval on hover
rule interactive_pairwise:
    input:
        pairwise=rules.pairwise_metrics.output.csv,
    output:
        report(
            f"{RUN}/interactive/pairwise.html",
            caption="../report/interactive_pairwise.rst",
            category="Alignment",
            subcategory="interactive",
            labels={
                "panel": "ours",
                "shows": "every metric of every pair, interval on hover",
            },
        ),
    log:
        f"{LOGS}/figures/interactive_pairwise.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/interactive_pairwise.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
    shell:
        "{params.py} {params.script} --pairwise {input.pairwise} --models {params.models}"
        " --labels {params.labels:q} --controls {params.controls} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"
