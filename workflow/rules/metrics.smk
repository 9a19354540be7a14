# Every pair of models in one space (raw, or one anchor set's Platonic space): one job per space, so the
# spaces run side by side (and on a cluster, on separate nodes); pairwise_metrics joins them
rule pairwise_space:
    input:
        unpack(space_matrices),
        atoms=rules.parse_structures.output.atoms,
    output:
        csv=f"{RUN}/metrics/pairwise/{{space}}.csv",
        sample=f"{RUN}/metrics/pairwise/{{space}}_sample.csv",
    log:
        f"{LOGS}/pairwise_metrics/{{space}}.log",
    benchmark:
        f"{RUN}/benchmarks/pairwise_metrics/{{space}}.tsv"
    wildcard_constraints:
        space="|".join(re.escape(s) for s in PAIRWISE_SPACES),
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    threads: config["metrics"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/pairwise_metrics.py",
        models=" ".join(MODELS),
        files=lambda wc, input: (
            f"--raw {' '.join(input.matrices)}"
            if wc.space == "raw"
            else f"--anchor-sets {wc.space} --platonic {' '.join(input.matrices)}"
        ),
        m=config["metrics"],
        u=config["metrics"]["uncertainty"],
        weights=json.dumps(config["metrics"]["composite_weights"]),
        normalize="" if config["metrics"]["knn_normalize"] else "--no-knn-normalize",
        beyond="--beyond-element" if config["metrics"]["beyond_element"] else "",
        roles=json.dumps(ROLES),
    shell:
        "{params.py} {params.script} --models {params.models} {params.files}"
        " --atoms {input.atoms} --n-sample {params.m[n_sample]} --seed {params.m[sample_seed]}"
        " --k {params.m[knn_k]} --knn-tie-tol {params.m[knn_tie_tol]} {params.normalize} {params.beyond}"
        " --composite-weights {params.weights:q} --repeats {params.u[repeats]} --level {params.u[level]} --resample-seed {params.u[seed]}"
        " --roles {params.roles:q} --control-pairs {params.m[control_pairs]}"
        " --workers {threads} --meta {input.meta} --out {output.csv} --out-sample {output.sample}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


# The all-pairs table: every metric, every pair, every space (raw first, then the anchor sets)
rule pairwise_metrics:
    input:
        csv=expand(f"{RUN}/metrics/pairwise/{{space}}.csv", space=PAIRWISE_SPACES),
        sample=expand(
            f"{RUN}/metrics/pairwise/{{space}}_sample.csv", space=PAIRWISE_SPACES
        ),
    output:
        csv=f"{RUN}/metrics/pairwise.csv",
        sample=f"{RUN}/metrics/sample.csv",
    log:
        f"{LOGS}/pairwise_metrics.log",
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/merge_pairwise.py",
    shell:
        "{params.py} {params.script} --tables {input.csv} --samples {input.sample}"
        " --out {output.csv} --out-sample {output.sample} > {log} 2>&1"
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
