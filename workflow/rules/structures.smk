# The structures (input functions: common.smk): a URL is downloaded once; a local file or
# folder is read where it is, as an input of parse_structures.
if SOURCE_IS_URL:

    rule download_structures:
        output:
            DOWNLOADED,
            provenance=f"{DOWNLOADED}.json",
        log:
            f"{LOGS}/download_structures.log",
        benchmark:
            f"{RUN}/benchmarks/download_structures.tsv"
        conda:
            "../../envs/analysis.yaml"
        resources:
            runtime=30,
        params:
            py=python_for("analysis"),
            script=f"{SH_SCRIPTS}/download_structures.py",
            url=SOURCE,
            sha256=config["structures"]["sha256"] or "",
            retries=config["structures"]["retries"],
        shell:
            "{params.py} {params.script} --url {params.url:q} --out {output[0]:q}"
            " --provenance {output.provenance:q} --retries {params.retries}"
            " $( [ -n '{params.sha256}' ] && echo --sha256 {params.sha256} ) > {log} 2>&1"
            f"{ON_FAILURE}"


rule parse_structures:
    input:
        structures_input,
    output:
        structures=f"{RUN}/structures/structures.npz",
        atoms=f"{RUN}/structures/atoms.csv",
        summary=f"{RUN}/structures/summary.json",
    log:
        f"{LOGS}/parse_structures.log",
    benchmark:
        f"{RUN}/benchmarks/parse_structures.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/parse_structures.py",
        path=DOWNLOADED if SOURCE_IS_URL else sh_path(SOURCE_PATH),
        name=SOURCE,
        options=structures_options(),
    shell:
        "{params.py} {params.script} --source {params.path} --name {params.name:q}"
        " {params.options} --out-structures {output.structures}"
        " --out-atoms {output.atoms} --out-summary {output.summary} > {log} 2>&1"
        f"{ON_FAILURE}"
