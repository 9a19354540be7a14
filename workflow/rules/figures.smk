# One rule per paper figure panel; captions in workflow/report/.


rule fig1_pca:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings(),
        meta=embedding_meta(),
    output:
        figure_outputs("fig1_pca"),
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
        script=f"{SH_SCRIPTS}/fig1_pca.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        fig=config["figures"],
    shell:
        "{params.py} {params.script} --models {params.models} --labels {params.labels:q}"
        " --embeddings {input.raw} --atoms {input.atoms} --max-points {params.fig[max_points]}"
        " --seed {params.fig[seed]} --dpi {params.fig[dpi]} --meta {input.meta}"
        " --controls {params.controls} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


for _name, _metric in FIG4.items():

    rule:
        name:
            _name
        input:
            pairwise=rules.pairwise_metrics.output.csv,
        output:
            figure_outputs(_name),
        log:
            f"{LOGS}/figures/{_name}.log",
        benchmark:
            f"{RUN}/benchmarks/figures/{_name}.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            py=python_for("analysis"),
            script=f"{SH_SCRIPTS}/fig4_heatmap.py",
            metric=_metric,
            models=" ".join(MODELS),
            labels=LABELS,
            controls=" ".join(CONTROLS),
            anchors=PRIMARY_ANCHORS,
            dpi=config["figures"]["dpi"],
        shell:
            "{params.py} {params.script} --pairwise {input.pairwise} --metric {params.metric}"
            " --models {params.models} --labels {params.labels:q} --anchors {params.anchors}"
            " --controls {params.controls} --dpi {params.dpi} --out {output} > {log} 2>&1"
            f"{ON_FAILURE}"


rule fig2b_anchors_pca:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings([REFERENCE]),
        meta=embedding_meta(),
        anchors=expand(f"{RUN}/anchors/{{s}}.csv", s=ANCHOR_SETS),
    output:
        figure_outputs("fig2b_anchors_pca"),
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
        script=f"{SH_SCRIPTS}/fig2b_anchors_pca.py",
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
        table=f"{RUN}/metrics/anchor_sweep.csv",
        figures=figure_outputs("fig3a_anchor_sweep"),
    log:
        f"{LOGS}/figures/fig3a_anchor_sweep.log",
    benchmark:
        f"{RUN}/benchmarks/figures/fig3a_anchor_sweep.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig3a_anchor_sweep.py",
        controls=" ".join(CONTROLS),
        labels=LABELS,
        run_k=config["anchors"]["k"],
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --tables {input.tables} --controls {params.controls}"
        " --labels {params.labels:q} --run-k {params.run_k} --dpi {params.dpi}"
        " --out-table {output.table} --out {output.figures} > {log} 2>&1"
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
            figure_outputs(_name),
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
            script=f"{SH_SCRIPTS}/fig1_pca.py",
            models=" ".join(MODELS),
            labels=LABELS,
            anchors=_set,
            controls=" ".join(CONTROLS),
            fig=config["figures"],
        shell:
            "{params.py} {params.script} --models {params.models} --labels {params.labels:q}"
            " --embeddings {input.platonic} --atoms {input.atoms} --anchors {params.anchors}"
            " --controls {params.controls}"
            " --max-points {params.fig[max_points]} --seed {params.fig[seed]} --dpi {params.fig[dpi]}"
            " --meta {input.meta} --out {output} > {log} 2>&1"
            f"{ON_FAILURE}"


rule fig4e_element_pca:
    input:
        elements=rules.element_embeddings.output.npz,
    output:
        figure_outputs("fig4e_element_pca"),
    log:
        f"{LOGS}/figures/fig4e_element_pca.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig4e_element_pca.py",
        labels=LABELS,
        controls=" ".join(CONTROLS),
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --elements {input.elements} --labels {params.labels:q}"
        " --controls {params.controls} --dpi {params.dpi} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


rule fig4f_element_similarity:
    input:
        correlations=rules.element_embeddings.output.csv,
    output:
        figure_outputs("fig4f_element_similarity"),
    log:
        f"{LOGS}/figures/fig4f_element_similarity.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig4f_element_similarity.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --correlations {input.correlations} --models {params.models}"
        " --labels {params.labels:q} --controls {params.controls} --dpi {params.dpi} --out {output}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


# OURS: the PCA maps of every model and space in one offline page, the atom on hover
rule interactive_maps:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings(),
        platonic=[p for s in ANCHOR_SETS for p in platonic(s)],
        meta=embedding_meta(),
    output:
        report(
            f"{RUN}/interactive/maps.html",
            caption="../report/interactive_maps.rst",
            category="Maps",
            subcategory="interactive",
            labels={
                "panel": "ours",
                "shows": "every model's PCA maps, atoms on hover",
            },
        ),
    log:
        f"{LOGS}/figures/interactive_maps.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/interactive_maps.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        sets=" ".join(ANCHOR_SETS),
        fig=config["figures"],
    shell:
        "{params.py} {params.script} --models {params.models} --labels {params.labels:q}"
        " --controls {params.controls} --raw {input.raw} --anchor-sets {params.sets}"
        " --platonic {input.platonic} --atoms {input.atoms} --meta {input.meta}"
        " --max-points {params.fig[interactive_points]} --seed {params.fig[seed]} --out {output}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


# OURS: the run's structures over their Platonic maps, for chemiscope (click a point, see the crystal)
rule chemiscope_map:
    input:
        structures=rules.parse_structures.output.structures,
        atoms=rules.parse_structures.output.atoms,
        platonic=platonic(PRIMARY_ANCHORS),
        meta=embedding_meta(),
    output:
        f"{RUN}/interactive/platonic_maps.chemiscope.json.gz",
    log:
        f"{LOGS}/figures/chemiscope_map.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/chemiscope_map.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        anchors=PRIMARY_ANCHORS,
        fig=config["figures"],
    shell:
        "{params.py} {params.script} --models {params.models} --labels {params.labels:q}"
        " --controls {params.controls} --platonic {input.platonic} --anchor-set {params.anchors}"
        " --structures {input.structures} --atoms {input.atoms} --meta {input.meta}"
        " --max-points {params.fig[interactive_points]} --seed {params.fig[seed]} --out {output}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


# OURS: each model's raw map beside its Platonic map (first anchor set), signs aligned
rule maps_raw_vs_platonic:
    input:
        atoms=rules.parse_structures.output.atoms,
        raw=embeddings(),
        platonic=platonic(PRIMARY_ANCHORS),
        meta=embedding_meta(),
    output:
        figure_outputs("maps_raw_vs_platonic"),
    log:
        f"{LOGS}/figures/maps_raw_vs_platonic.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig1_pca.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        anchors=PRIMARY_ANCHORS,
        fig=config["figures"],
    shell:
        "{params.py} {params.script} --models {params.models} --labels {params.labels:q}"
        " --embeddings {input.raw} --side-by-side {input.platonic} --anchors {params.anchors}"
        " --atoms {input.atoms} --max-points {params.fig[max_points]} --seed {params.fig[seed]}"
        " --dpi {params.fig[dpi]} --meta {input.meta} --controls {params.controls} --out {output}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"
