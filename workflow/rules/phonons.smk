# Phonons (issue 12, OURS throughout; config key `phonons`, docs/phonons.md): named reference crystals and
# seeded structures of the run, relaxed and phonon-computed by every trained model and the last checkpoint
# of every fine-tuning arm; each job also embeds its relaxed structures (the distortion of the shared
# space). phonon_bands overlays the bands and ranks the distortion against the phonon failures.


rule phonon_structures:
    input:
        structures=rules.parse_structures.output.structures,
    output:
        f"{PH_DIR}/structures.extxyz",
    log:
        f"{LOGS}/phonons/structures.log",
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/phonon_structures.py",
        options=phonon_structure_options(),
    shell:
        "{params.py} {params.script} --structures {input.structures} {params.options}"
        " --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


rule phonons:
    input:
        structures=rules.phonon_structures.output,
        weights=lambda wc: weights_of_checkpoint(checkpoint_of(wc.model)),
        embeddings=f"{RUN}/embeddings/{{model}}.npy",
        anchors=f"{RUN}/anchors/{PRIMARY_ANCHORS}.csv",
    output:
        npz=f"{PH_DIR}/models/{{model}}.npz",
        csv=f"{PH_DIR}/models/{{model}}.csv",
    log:
        f"{LOGS}/phonons/{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/phonons/{{model}}.tsv"
    wildcard_constraints:
        model="|".join(re.escape(m) for m in PH_MODELS) or "^$",
    priority: CRITICAL_PATH
    conda:
        lambda wc: str(ROOT / "envs" / f"{env_of(checkpoint_of(wc.model))}.yaml")
    threads: PH["threads"]
    resources:
        gpu=lambda wc: phonon_gpu(wc.model),
        mem_mb=PH["mem_mb"],
        runtime=PH["runtime"],
    params:
        py=lambda wc: python_for(env_of(checkpoint_of(wc.model))),
        script=f"{SH_SCRIPTS}/phonons.py",
        checkpoint=lambda wc: checkpoint_of(wc.model),
        layer=lambda wc: MODELS[wc.model]["layer"],
        options=lambda wc: json.dumps(
            config["model_options"].get(checkpoint_of(wc.model), {})
        ),
        weights_file=lambda wc: weights_option(checkpoint_of(wc.model)),
        phonon=phonon_options(),
        device=config["embed"]["device"],
    shell:
        "{params.py} {params.script} --model {params.checkpoint} --label {wildcards.model:q}"
        " --options {params.options:q} {params.weights_file} --structures {input.structures}"
        " --layer {params.layer} --embeddings {input.embeddings} --anchors {input.anchors}"
        " {params.phonon} --device {params.device} --threads {threads}"
        " --out-npz {output.npz} --out-csv {output.csv} > {log} 2>&1"
        f"{ON_FAILURE}"


rule phonons_finetuned:
    input:
        structures=rules.phonon_structures.output,
        summary=f"{FT_DIR}/arms/{{arm}}/seed{{seed}}/summary.json",
        embeddings=f"{RUN}/embeddings/{FT_MODEL}.npy",
        anchors=f"{RUN}/anchors/{PRIMARY_ANCHORS}.csv",
    output:
        npz=f"{PH_DIR}/finetuned/{{arm}}/seed{{seed}}.npz",
        csv=f"{PH_DIR}/finetuned/{{arm}}/seed{{seed}}.csv",
    log:
        f"{LOGS}/phonons/finetuned/{{arm}}/seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/phonons_finetuned/{{arm}}/seed{{seed}}.tsv"
    wildcard_constraints:
        arm="|".join(FT["arms"]),
        seed=r"\d+",
    priority: CRITICAL_PATH
    conda:
        str(ROOT / "envs" / f"{FT_ENV}.yaml")
    threads: PH["threads"]
    resources:
        gpu=PH["gpu"] if FT_FAMILY and FAMILIES[FT_FAMILY]["gpu"] else 0,
        mem_mb=PH["mem_mb"],
        runtime=PH["runtime"],
    params:
        py=python_for(FT_ENV),
        script=f"{SH_SCRIPTS}/phonons.py",
        model=FT_CKPT,
        label=lambda wc: shlex.quote(f"{FT_MODEL} {wc.arm} s{wc.seed}"),
        layer=MODELS[FT_MODEL]["layer"] if FT_MODEL in MODELS else "",
        options=FT_OPTIONS,
        phonon=phonon_options(),
        device=config["embed"]["device"],
    shell:
        "{params.py} {params.script} --model {params.model} --label {params.label}"
        " --options {params.options:q} --finetune-summary {input.summary}"
        " --structures {input.structures} --layer {params.layer} --embeddings {input.embeddings}"
        " --anchors {input.anchors} {params.phonon} --device {params.device} --threads {threads}"
        " --out-npz {output.npz} --out-csv {output.csv} > {log} 2>&1"
        f"{ON_FAILURE}"


rule phonon_bands:
    input:
        csv=phonon_results("csv"),
        npz=phonon_results("npz"),
    output:
        imaginary=f"{PH_DIR}/phonon_imaginary.csv",
        disagreement=f"{PH_DIR}/phonon_disagreement.csv",
        distortion=f"{PH_DIR}/phonon_distortion.csv",
        correlation=f"{PH_DIR}/phonon_distortion_correlation.csv",
        figure=figure_outputs("phonon_bands"),
    log:
        f"{LOGS}/phonons/phonon_bands.log",
    benchmark:
        f"{RUN}/benchmarks/phonon_bands.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/phonon_report.py",
        labels=" ".join(shlex.quote(x) for x in phonon_labels()),
        consensus=" ".join(shlex.quote(x) for x in PH_MODELS),
    shell:
        "{params.py} {params.script} --csv {input.csv} --npz {input.npz} --labels {params.labels}"
        " --consensus {params.consensus} --out-imaginary {output.imaginary}"
        " --out-disagreement {output.disagreement} --out-distortion {output.distortion}"
        " --out-distortion-correlation {output.correlation} --out-png {output.figure[0]}"
        " --out-pdf {output.figure[1]} > {log} 2>&1"
        f"{ON_FAILURE}"
