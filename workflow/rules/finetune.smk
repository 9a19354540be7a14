# Fine-tuning and the physics it breaks (paper Fig. 5a-e). One pretrained model of the run
# (`finetune.pretrained`) is fine-tuned on Cu in every arm and seed; every kept checkpoint embeds
# unseen Au atoms and held-out Cu, computes Au-Au/Cu-Cu dimer curves and its errors. Protocol
# details the paper does not give are OURS (config key `finetune`, docs/finetune.md).


rule finetune_reference:
    input:
        weights=lambda wc: weights_of_checkpoint(FT_CKPT),
    output:
        f"{FT_DIR}/reference.json",
    log:
        f"{LOGS}/finetune/reference.log",
    priority: CRITICAL_PATH
    conda:
        str(ROOT / "envs" / f"{FT_ENV}.yaml")
    threads: FT["threads"]
    params:
        py=python_for(FT_ENV),
        script=f"{SH_SCRIPTS}/finetune_reference.py",
        model=FT_MODEL,
        options=FT_OPTIONS,
        weights_file=FT_WEIGHTS_OPTION,
        device=config["embed"]["device"],
    shell:
        "{params.py} {params.script} --model {params.model} --options {params.options:q}"
        " {params.weights_file} --device {params.device} --threads {threads} --out {output}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


rule finetune_data:
    input:
        reference=rules.finetune_reference.output,
        data=FT_DATA_INPUT,
    output:
        train=f"{FT_DIR}/data/train.extxyz",
        val=f"{FT_DIR}/data/val.extxyz",
        test=f"{FT_DIR}/data/test.extxyz",
        au=f"{FT_DIR}/data/au_probes.extxyz",
        dimers=f"{FT_DIR}/data/emt_dimers.csv",
        summary=f"{FT_DIR}/data/summary.json",
    log:
        f"{LOGS}/finetune/data.log",
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/finetune_data.py",
        options=finetune_data_options(),
    shell:
        "{params.py} {params.script} {params.options} --shift-json {input.reference}"
        " --out-train {output.train} --out-val {output.val} --out-test {output.test}"
        " --out-au {output.au} --out-dimers {output.dimers} --out-summary {output.summary}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


rule replay_structures:
    input:
        structures=rules.parse_structures.output.structures,
    output:
        f"{FT_DIR}/data/replay.extxyz",
    log:
        f"{LOGS}/finetune/replay_structures.log",
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/replay_structures.py",
        n=FT["replay"]["structures"],
        max_atoms=FT["replay"]["max_atoms"],
        exclude=" ".join(FT["replay"]["exclude_elements"]),
        seed=FT["seed"],
    shell:
        "{params.py} {params.script} --structures {input.structures} --n {params.n}"
        " --max-atoms {params.max_atoms} --exclude-elements {params.exclude} --seed {params.seed}"
        " --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


rule finetune_probes:
    input:
        au=rules.finetune_data.output.au,
        test=rules.finetune_data.output.test,
        structures=rules.parse_structures.output.structures,
        anchors=f"{RUN}/anchors/{FT['anchor_set']}.csv",
    output:
        structures=f"{FT_DIR}/probes/structures.npz",
        atoms=f"{FT_DIR}/probes/atoms.csv",
    log:
        f"{LOGS}/finetune/probes.log",
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/finetune_probes.py",
    shell:
        "{params.py} {params.script} --au {input.au} --cu-test {input.test}"
        " --structures {input.structures} --anchors {input.anchors}"
        " --out-structures {output.structures} --out-atoms {output.atoms} > {log} 2>&1"
        f"{ON_FAILURE}"


rule finetune:
    input:
        train=rules.finetune_data.output.train,
        val=rules.finetune_data.output.val,
        replay=rules.replay_structures.output,
        weights=lambda wc: weights_of_checkpoint(FT_CKPT),
    output:
        summary=f"{FT_DIR}/arms/{{arm}}/seed{{seed}}/summary.json",
        checkpoints=directory(f"{FT_DIR}/arms/{{arm}}/seed{{seed}}/checkpoints"),
    log:
        f"{LOGS}/finetune/{{arm}}/seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/finetune/{{arm}}/seed{{seed}}.tsv"
    wildcard_constraints:
        arm="|".join(FT["arms"]),
        seed=r"\d+",
    priority: CRITICAL_PATH
    conda:
        str(ROOT / "envs" / f"{FT_ENV}.yaml")
    threads: FT["threads"]
    resources:
        gpu=FT["gpu"],
        mem_mb=FT["mem_mb"],
        runtime=FT["runtime"],
    params:
        py=python_for(FT_ENV),
        script=f"{SH_SCRIPTS}/finetune.py",
        family=FT_FAMILY,
        model=FT_MODEL,
        options=FT_OPTIONS,
        weights_file=FT_WEIGHTS_OPTION,
        train=finetune_train_options(),
        workdir=lambda wc: f"{FT_DIR}/work/{wc.arm}/seed{wc.seed}",
        device=config["embed"]["device"],
    shell:
        "{params.py} {params.script} --family {params.family} --arm {wildcards.arm}"
        " --seed {wildcards.seed} --model {params.model} --options {params.options:q}"
        " {params.weights_file} --train {input.train} --val {input.val} --replay {input.replay}"
        " {params.train} --device {params.device} --threads {threads}"
        " --workdir {params.workdir} --restart-on-change --out-checkpoints {output.checkpoints}"
        " --out-json {output.summary} > {log} 2>&1"
        f"{ON_FAILURE}"


rule finetune_evaluate:
    input:
        summary=rules.finetune.output.summary,
        structures=rules.finetune_probes.output.structures,
        test=rules.finetune_data.output.test,
        au=rules.finetune_data.output.au,
        weights=lambda wc: weights_of_checkpoint(FT_CKPT),
    output:
        npz=f"{FT_DIR}/eval/{{arm}}/seed{{seed}}/embeddings.npz",
        dimers=f"{FT_DIR}/eval/{{arm}}/seed{{seed}}/dimers.csv",
        accuracy=f"{FT_DIR}/eval/{{arm}}/seed{{seed}}/accuracy.csv",
        meta=f"{FT_DIR}/eval/{{arm}}/seed{{seed}}/eval.json",
    log:
        f"{LOGS}/finetune/evaluate/{{arm}}/seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/finetune_evaluate/{{arm}}/seed{{seed}}.tsv"
    wildcard_constraints:
        arm="|".join(FT["arms"]),
        seed=r"\d+",
    priority: CRITICAL_PATH
    conda:
        str(ROOT / "envs" / f"{FT_ENV}.yaml")
    threads: FT["threads"]
    resources:
        gpu=FT["gpu"],
        mem_mb=FT["mem_mb"],
        runtime=FT["runtime"],
    params:
        py=python_for(FT_ENV),
        script=f"{SH_SCRIPTS}/finetune_evaluate.py",
        model=FT_MODEL,
        options=FT_OPTIONS,
        weights_file=FT_WEIGHTS_OPTION,
        pairs=" ".join(FT["dimers"]["pairs"]),
        distances=" ".join(map(str, FT["dimers"]["distances"])),
        device=config["embed"]["device"],
        batch_atoms=config["embed"]["batch_atoms"],
    shell:
        "{params.py} {params.script} --model {params.model} --options {params.options:q}"
        " {params.weights_file} --summary {input.summary} --structures {input.structures}"
        " --cu-test {input.test} --au {input.au} --pairs {params.pairs}"
        " --distances {params.distances} --device {params.device} --threads {threads}"
        " --batch-atoms {params.batch_atoms} --out-npz {output.npz}"
        " --out-dimers {output.dimers} --out-accuracy {output.accuracy}"
        " --out-json {output.meta} > {log} 2>&1"
        f"{ON_FAILURE}"


rule fig5abc_finetune_embeddings:
    input:
        atoms=rules.finetune_probes.output.atoms,
        evals=expand(f"{FT_DIR}/eval/{{run}}/embeddings.npz", run=FT_RUNS),
    output:
        table=f"{FT_DIR}/fig5abc_finetune_embeddings.csv",
        figure=figure_outputs("fig5abc_finetune_embeddings"),
    log:
        f"{LOGS}/finetune/fig5abc_finetune_embeddings.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig5abc_finetune_embeddings.py",
        seeds=" ".join(str(s) for _, s in FT_ARM_SEEDS),
        label=shlex.quote(FT_LABEL),
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --atoms {input.atoms} --evals {input.evals}"
        " --seeds {params.seeds} --model-label {params.label} --dpi {params.dpi}"
        " --out-csv {output.table} --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


rule fig5de_dimer_curves:
    input:
        emt=rules.finetune_data.output.dimers,
        dimers=expand(f"{FT_DIR}/eval/{{run}}/dimers.csv", run=FT_RUNS),
    output:
        curves=f"{FT_DIR}/fig5de_dimer_curves_data.csv",
        table=f"{FT_DIR}/fig5de_dimer_curves.csv",
        figure=figure_outputs("fig5de_dimer_curves"),
    log:
        f"{LOGS}/finetune/fig5de_dimer_curves.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig5de_dimer_curves.py",
        seeds=" ".join(str(s) for _, s in FT_ARM_SEEDS),
        label=shlex.quote(FT_LABEL),
        tol=FT["dimers"]["repulsive_tol"],
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --emt {input.emt} --dimers {input.dimers}"
        " --seeds {params.seeds} --model-label {params.label} --repulsive-tol {params.tol}"
        " --dpi {params.dpi} --out-curves {output.curves} --out-csv {output.table}"
        " --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


rule finetune_accuracy:
    input:
        accuracy=expand(f"{FT_DIR}/eval/{{run}}/accuracy.csv", run=FT_RUNS),
        shift=rules.fig5abc_finetune_embeddings.output.table,
        dimers=rules.fig5de_dimer_curves.output.table,
    output:
        f"{FT_DIR}/finetune_accuracy.csv",
    log:
        f"{LOGS}/finetune/finetune_accuracy.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/finetune_accuracy.py",
        seeds=" ".join(str(s) for _, s in FT_ARM_SEEDS),
    shell:
        "{params.py} {params.script} --accuracy {input.accuracy} --seeds {params.seeds}"
        " --shift {input.shift} --dimers {input.dimers} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"
