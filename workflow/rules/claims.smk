# OURS: the paper's claims tested on this run, one verdict per claim, metric and anchor set. The rules
# behind the verdicts (pairs, intervals, thresholds) are documented in src/platonic_mlip/claims.py.


rule claims:
    input:
        pairwise=rules.pairwise_metrics.output.csv,
        sweep=expand(f"{RUN}/metrics/anchor_sweep/k{{k}}.csv", k=SWEEP_K),
        elements=rules.element_embeddings.output.npz,
        diagnostics=claims_diagnostics(),
    output:
        csv=f"{RUN}/claims.csv",
        html=report(
            f"{RUN}/claims.html",
            caption="../report/claims.rst",
            category="Findings",
        ),
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{RUN}/benchmarks/claims.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/claims.py",
        models=" ".join(MODELS),
        controls=" ".join(CONTROLS),
        families=json.dumps({m: s["family"] for m, s in MODELS.items()}),
        roles=json.dumps(ROLES),
        sets=" ".join(SPACES),
        k=config["anchors"]["k"],
        diagnostics=(
            f"--rotation {DIAG_DIR}/fig5g_rotational_sensitivity_summary.csv"
            f" --symmetry {DIAG_DIR}/fig5f_equivariant_fraction.csv"
            if DIAGNOSTICS
            else ""
        ),
    shell:
        "{params.py} {params.script} --pairwise {input.pairwise} --sweep {input.sweep}"
        " --elements {input.elements} --models {params.models} --controls {params.controls}"
        " --families {params.families:q} --roles {params.roles:q} --anchor-sets {params.sets} --run-k {params.k} {params.diagnostics}"
        " --out-csv {output.csv} --out-html {output.html} > {log} 2>&1"
        f"{ON_FAILURE}"
