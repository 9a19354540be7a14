# One rule per paper figure panel; captions in workflow/report/.


rule fig1_pca:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings(),
        meta=embedding_meta(),
    output:
        [
            report(f, caption="../report/fig1_pca.rst", category="Figures")
            for f in figure("fig1_pca")
        ],
    log:
        f"{LOGS}/figures/fig1_pca.log",
    benchmark:
        f"{RUN}/benchmarks/figures/fig1_pca.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/fig1_pca.py",
        models=" ".join(MODELS),
        labels=LABELS,
        fig=config["figures"],
    shell:
        "{params.py} {params.script} --models {params.models} --labels {params.labels:q}"
        " --embeddings {input.raw} --atoms {input.atoms} --max-points {params.fig[max_points]}"
        " --seed {params.fig[seed]} --dpi {params.fig[dpi]} --meta {input.meta} --out {output}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


for _name, _metric in FIG4.items():

    rule:
        name:
            _name
        input:
            pairwise=rules.pairwise_metrics.output.csv,
        output:
            [
                report(f, caption=f"../report/{_name}.rst", category="Figures")
                for f in figure(_name)
            ],
        log:
            f"{LOGS}/figures/{_name}.log",
        benchmark:
            f"{RUN}/benchmarks/figures/{_name}.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            py=python_for("analysis"),
            script=f"{SCRIPTS}/fig4_heatmap.py",
            metric=_metric,
            models=" ".join(MODELS),
            labels=LABELS,
            anchors=PRIMARY_ANCHORS,
            dpi=config["figures"]["dpi"],
        shell:
            "{params.py} {params.script} --pairwise {input.pairwise} --metric {params.metric}"
            " --models {params.models} --labels {params.labels:q} --anchors {params.anchors}"
            " --dpi {params.dpi} --out {output} > {log} 2>&1"
            f"{ON_FAILURE}"


rule fig2b_anchors_pca:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings([REFERENCE]),
        meta=embedding_meta(),
        anchors=expand(f"{RUN}/anchors/{{s}}.csv", s=ANCHOR_SETS),
    output:
        [
            report(f, caption="../report/fig2b_anchors_pca.rst", category="Figures")
            for f in figure("fig2b_anchors_pca")
        ],
    log:
        f"{LOGS}/figures/fig2b_anchors_pca.log",
    benchmark:
        f"{RUN}/benchmarks/figures/fig2b_anchors_pca.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/fig2b_anchors_pca.py",
        label=MODELS[REFERENCE].get("label", REFERENCE),
        fig=config["figures"],
    shell:
        "{params.py} {params.script} --embeddings {input.raw} --reference-label {params.label:q}"
        " --atoms {input.atoms} --meta {input.meta} --anchors {input.anchors}"
        " --max-points {params.fig[max_points]} --seed {params.fig[seed]} --dpi {params.fig[dpi]}"
        " --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


rule fig3a_anchor_sweep:
    input:
        tables=expand(f"{RUN}/metrics/anchor_sweep/k{{k}}.csv", k=SWEEP_K),
    output:
        table=report(
            f"{RUN}/metrics/anchor_sweep.csv",
            caption="../report/anchor_sweep_table.rst",
            category="Anchors",
        ),
        figures=[
            report(f, caption="../report/fig3a_anchor_sweep.rst", category="Figures")
            for f in figure("fig3a_anchor_sweep")
        ],
    log:
        f"{LOGS}/figures/fig3a_anchor_sweep.log",
    benchmark:
        f"{RUN}/benchmarks/figures/fig3a_anchor_sweep.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/fig3a_anchor_sweep.py",
        controls=" ".join(CONTROLS),
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --tables {input.tables} --controls {params.controls}"
        " --dpi {params.dpi} --out-table {output.table} --out {output.figures} > {log} 2>&1"
        f"{ON_FAILURE}"


for _name, _set in FIG3_PCA.items():

    rule:
        name:
            _name
        input:
            atoms=rules.parse_structures.output.atoms,
            platonic=platonic(_set),
            meta=embedding_meta(),
        output:
            [
                report(f, caption=f"../report/{_name}.rst", category="Figures")
                for f in figure(_name)
            ],
        log:
            f"{LOGS}/figures/{_name}.log",
        benchmark:
            f"{RUN}/benchmarks/figures/{_name}.tsv"
        conda:
            "../../envs/analysis.yaml"
        resources:
            mem_mb=4000,
        params:
            py=python_for("analysis"),
            script=f"{SCRIPTS}/fig1_pca.py",
            models=" ".join(MODELS),
            labels=LABELS,
            title=f"Platonic embeddings, {_set} anchors (PCA)",
            fig=config["figures"],
        shell:
            "{params.py} {params.script} --models {params.models} --labels {params.labels:q}"
            " --embeddings {input.platonic} --atoms {input.atoms} --title {params.title:q}"
            " --max-points {params.fig[max_points]} --seed {params.fig[seed]} --dpi {params.fig[dpi]}"
            " --meta {input.meta} --out {output} > {log} 2>&1"
            f"{ON_FAILURE}"


rule fig4e_element_pca:
    input:
        elements=rules.element_embeddings.output.npz,
    output:
        [
            report(f, caption="../report/fig4e_element_pca.rst", category="Figures")
            for f in figure("fig4e_element_pca")
        ],
    log:
        f"{LOGS}/figures/fig4e_element_pca.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/fig4e_element_pca.py",
        labels=LABELS,
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --elements {input.elements} --labels {params.labels:q}"
        " --dpi {params.dpi} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


rule fig4f_element_similarity:
    input:
        correlations=rules.element_embeddings.output.csv,
    output:
        [
            report(
                f, caption="../report/fig4f_element_similarity.rst", category="Figures"
            )
            for f in figure("fig4f_element_similarity")
        ],
    log:
        f"{LOGS}/figures/fig4f_element_similarity.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/fig4f_element_similarity.py",
        models=" ".join(MODELS),
        labels=LABELS,
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --correlations {input.correlations} --models {params.models}"
        " --labels {params.labels:q} --dpi {params.dpi} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"
