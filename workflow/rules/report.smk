# The report's own pages (ours): the findings of the run, written from its tables, and every CSV the
# report shows as an HTML page. The landing text is workflow/report/workflow.rst (Snakefile `report:`).


rule report_findings:
    input:
        claims=rules.claims.output.csv,
        pairwise=rules.pairwise_metrics.output.csv,
        second=(
            [
                f"{REC_DIR}/atoms_summary.csv",
                f"{REC_DIR}/finetune_bias.csv",
                f"{REC_DIR}/papers_rank_correlation.csv",
            ]
            if RECONSTRUCTION
            else []
        ),
    output:
        html=report(
            f"{RUN}/report/findings.html",
            caption="../report/findings.rst",
            category="Findings",
            labels={"page": "findings of this run"},
        ),
        landing=LANDING,
    log:
        f"{LOGS}/report/findings.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/report_pages.py",
        models=json.dumps(
            {
                m: {"family": s["family"], "label": s.get("label", m)}
                for m, s in MODELS.items()
            }
        ),
        controls=" ".join(CONTROLS),
        anchors=PRIMARY_ANCHORS,
        run=config["run_name"],
        # the introduction, named from the checkout; its digest makes an edit rerun the job
        intro=sh_path(INTRO),
        second=lambda wc, input: (
            f"--reconstruction {input.second[0]} --finetune-bias {input.second[1]}"
            f" --rank-correlation {input.second[2]}"
            if input.second
            else ""
        ),
        intro_sha256=sha256_of(INTRO),
    shell:
        "{params.py} {params.script} findings --claims {input.claims} --pairwise {input.pairwise}"
        " --models {params.models:q} --controls {params.controls} --anchors {params.anchors}"
        " --run-name {params.run:q} --landing {params.intro} --out-landing {output.landing}"
        " {params.second} --out {output.html} > {log} 2>&1"
        f"{ON_FAILURE}"


for _table, (_csv, _title, _category, _caption) in report_tables().items():

    rule:
        name:
            f"table_{_table}"
        input:
            _csv,
        output:
            report(
                f"{RUN}/report/tables/{_table}.html",
                caption=f"../report/{_caption}.rst",
                category=_category,
                subcategory="tables",
                labels={"table": _title},
            ),
        log:
            f"{LOGS}/report/tables/{_table}.log",
        conda:
            "../../envs/analysis.yaml"
        params:
            py=python_for("analysis"),
            script=f"{SH_SCRIPTS}/report_pages.py",
            title=_title,
            controls=" ".join(CONTROLS),
            labels=LABELS,
        shell:
            "{params.py} {params.script} table --csv {input} --title {params.title:q}"
            " --controls {params.controls} --labels {params.labels:q} --out {output} > {log} 2>&1"
            f"{ON_FAILURE}"
