# Weights are fetched once into the weights cache (platonic_mlip.weights); embedding jobs read the local
# file only. Runs in the checkpoint's family environment: a package key is turned into the package's own URL.


rule fetch_weights:
    output:
        f"{WEIGHTS}/{{checkpoint}}/{{filename}}",
    log:
        f"{LOGS}/fetch_weights/{{checkpoint}}/{{filename}}.log",
    retries: 0
    conda:
        lambda wc: str(ROOT / "envs" / f"{env_of(wc.checkpoint)}.yaml")
    resources:
        runtime=60,
    params:
        py=lambda wc: python_for(env_of(wc.checkpoint)),
        script=f"{SH_SCRIPTS}/fetch_weights.py",
        family=lambda wc: CHECKPOINTS[wc.checkpoint]["family"],
        url=lambda wc: weights_of(wc.checkpoint)["url"] or "",
        key=lambda wc: weights_of(wc.checkpoint)["key"] or "",
        sha256=lambda wc: CHECKPOINTS[wc.checkpoint].get("sha256") or "",
    shell:
        "{params.py} {params.script} --model {wildcards.checkpoint} --family {params.family}"
        " --url={params.url:q} --key={params.key:q} --sha256={params.sha256:q} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"
