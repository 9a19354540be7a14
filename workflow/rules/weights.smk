# Weights are fetched once into the weights cache; embedding jobs read the local file only.


rule fetch_weights:
    output:
        f"{WEIGHTS}/{{model}}/{{filename}}",
    log:
        f"{LOGS}/fetch_weights/{{model}}/{{filename}}.log",
    retries: 0
    conda:
        "../../envs/analysis.yaml"
    resources:
        runtime=60,
    params:
        py=python_for("analysis"),
        script=f"{SCRIPTS}/fetch_weights.py",
        url=lambda wc: weights_of(wc.model)[0],
        sha256=lambda wc: MODELS[wc.model].get("sha256") or "",
    shell:
        "{params.py} {params.script} --model {wildcards.model} --url {params.url:q} --out {output}"
        " $( [ -n '{params.sha256}' ] && echo --sha256 {params.sha256} ) > {log} 2>&1"
