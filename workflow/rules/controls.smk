# OURS (docs/controls.md): trained controls of what makes the shared geometry. One architecture, one
# random start: trained to denoise positions (no energy or force labels) or distilled from a pretrained
# teacher's energies and forces. Their checkpoints are then embedded like any other model (rule embed).


rule train_control:
    input:
        structures=rules.parse_structures.output.structures,
    output:
        checkpoint=f"{RUN}/controls/{{checkpoint}}/model.pth",
        summary=f"{RUN}/controls/{{checkpoint}}/summary.json",
    log:
        f"{LOGS}/train_control/{{checkpoint}}.log",
    benchmark:
        f"{RUN}/benchmarks/train_control/{{checkpoint}}.tsv"
    wildcard_constraints:
        checkpoint="|".join(re.escape(c) for c in CONTROL_CKPTS) or "^$",
    priority: CRITICAL_PATH
    conda:
        lambda wc: str(ROOT / "envs" / f"{env_of(wc.checkpoint)}.yaml")
    threads: CTL["threads"]
    resources:
        gpu=CTL["gpu"],
        mem_mb=CTL["mem_mb"],
        runtime=CTL["runtime"],
    params:
        py=lambda wc: python_for(env_of(wc.checkpoint)),
        script=f"{SH_SCRIPTS}/train_control.py",
        options=embed_options,
        workdir=lambda wc: f"{RUN}/controls/{wc.checkpoint}/work",
        device=config["embed"]["device"],
        c=CTL,
    shell:
        "{params.py} {params.script} --model {wildcards.checkpoint} --options {params.options:q}"
        " --structures {input.structures} --n-structures {params.c[structures]} --max-atoms {params.c[max_atoms]}"
        " --copies {params.c[copies]} --sigma {params.c[sigma]} --epochs {params.c[epochs]}"
        " --batch-size {params.c[batch_size]} --lr {params.c[lr]} --energy-weight {params.c[energy_weight]}"
        " --force-weight {params.c[force_weight]} --data-seed {params.c[seed]} --device {params.device}"
        " --threads {threads} --workdir {params.workdir} --out-checkpoint {output.checkpoint}"
        " --out-json {output.summary} > {log} 2>&1"
        f"{ON_FAILURE}"
