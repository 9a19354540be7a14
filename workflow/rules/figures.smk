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
