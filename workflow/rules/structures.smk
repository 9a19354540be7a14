rule download_structures:
    output:
        csv=f"{RUN}/structures/split.csv",
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
        script=f"{SCRIPTS}/download_structures.py",
        source=structures_source(),
        sha256=config["structures"]["sha256"] or "",
        retries=config["structures"]["retries"],
    shell:
        "{params.py} {params.script} --source {params.source:q} --out {output.csv}"
        " --retries {params.retries} $( [ -n '{params.sha256}' ] && echo --sha256 {params.sha256} )"
        " > {log} 2>&1"


rule parse_structures:
    input:
        csv=rules.download_structures.output.csv,
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
        script=f"{SCRIPTS}/parse_structures.py",
        limit=(
            f"--limit {config['structures']['limit']}"
            if config["structures"]["limit"]
            else ""
        ),
        expected=" ".join(
            f"--expected-{k} {config['structures'][f'expected_{k}']}"
            for k in ("structures", "atoms")
            if config["structures"][f"expected_{k}"]
        ),
    shell:
        "{params.py} {params.script} --csv {input.csv} {params.limit} {params.expected}"
        " --out-structures {output.structures} --out-atoms {output.atoms}"
        " --out-summary {output.summary} > {log} 2>&1"
