# The second paper, Chorna et al. "Comparing the latent features of universal MLIPs" (arXiv 2512.05717),
# on the same per-atom embeddings: feature reconstruction errors (GFRE, LFRE) of every ordered model
# pair in raw and Platonic space, cumulant structure descriptors, fine-tuned pairs, and both papers'
# answers side by side. Config key `reconstruction`; docs/reconstruction.md.


# GFRE and LFRE of every ordered pair of models in one space (raw or a Platonic space)
rule feature_reconstruction_space:
    input:
        unpack(space_matrices),
        atoms=rules.parse_structures.output.atoms,
    output:
        table=f"{REC_DIR}/atoms/{{space}}.csv",
        split=f"{REC_DIR}/atoms/{{space}}_test_atoms.csv",
    log:
        f"{LOGS}/reconstruction/feature_reconstruction_{{space}}.log",
    benchmark:
        f"{RUN}/benchmarks/reconstruction/feature_reconstruction_{{space}}.tsv"
    wildcard_constraints:
        space="|".join(re.escape(s) for s in ["raw", *SPACES]),
    conda:
        "../../envs/analysis.yaml"
    threads: REC["threads"]
    resources:
        mem_mb=REC["mem_mb"],
        runtime=REC["runtime"],
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/feature_reconstruction.py",
        models=" ".join(MODELS),
        options=reconstruction_options(),
    shell:
        "OMP_NUM_THREADS=1 {params.py} {params.script} --atoms {input.atoms} --space {wildcards.space}"
        " --models {params.models} --matrices {input.matrices} --meta {input.meta} {params.options}"
        " --workers {threads} --out {output.table} --out-split {output.split} > {log} 2>&1"
        f"{ON_FAILURE}"


# Chorna et al.: the error heatmaps (rows source, columns target) and the asymmetry, per space
rule feature_reconstruction:
    input:
        tables=expand(f"{REC_DIR}/atoms/{{space}}.csv", space=REC["spaces"]),
    output:
        summary=f"{REC_DIR}/atoms_summary.csv",
        figure=figure_outputs("feature_reconstruction"),
    log:
        f"{LOGS}/reconstruction/feature_reconstruction.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/reconstruction_heatmaps.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        level=REC["level"],
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --tables {input.tables} --models {params.models}"
        " --labels {params.labels:q} --controls {params.controls} --level {params.level}"
        " --dpi {params.dpi} --out-summary {output.summary} --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


# Cumulant descriptors (kappa_1..kappa_8 per structure and raw feature) of every model
rule structure_cumulants:
    input:
        raw=embeddings(),
        meta=embedding_meta(),
        atoms=rules.parse_structures.output.atoms,
    output:
        blocks=[f"{REC_DIR}/cumulants/{m}.npy" for m in MODELS],
        structures=f"{REC_DIR}/cumulants/structures.csv",
        dropped=f"{REC_DIR}/single_atom_structures.csv",
    log:
        f"{LOGS}/reconstruction/structure_cumulants.log",
    benchmark:
        f"{RUN}/benchmarks/reconstruction/structure_cumulants.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=REC["mem_mb"],
        runtime=REC["runtime"],
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/structure_cumulants.py",
        models=" ".join(MODELS),
        st=REC["structures"],
    shell:
        "{params.py} {params.script} --atoms {input.atoms} --models {params.models} --raw {input.raw}"
        " --meta {input.meta} --max-order {params.st[max_order]} --min-atoms {params.st[min_atoms]}"
        " --out {output.blocks} --out-structures {output.structures} --out-dropped {output.dropped}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


# Chorna et al.: how much each cumulant order adds, within each model
rule cumulant_orders:
    input:
        blocks=[f"{REC_DIR}/cumulants/{m}.npy" for m in REC_ORDER_MODELS],
        structures=rules.structure_cumulants.output.structures,
    output:
        table=f"{REC_DIR}/cumulant_orders.csv",
        figure=figure_outputs("cumulant_orders"),
    log:
        f"{LOGS}/reconstruction/cumulant_orders.log",
    benchmark:
        f"{RUN}/benchmarks/reconstruction/cumulant_orders.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: REC["threads"]
    resources:
        mem_mb=REC["mem_mb"],
        runtime=REC["runtime"],
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/cumulant_orders.py",
        models=" ".join(REC_ORDER_MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        options=structure_options(),
        dpi=config["figures"]["dpi"],
    shell:
        "OMP_NUM_THREADS=1 {params.py} {params.script} --models {params.models} --labels {params.labels:q}"
        " --controls {params.controls} --cumulants {input.blocks} --structures {input.structures}"
        " {params.options} --workers {threads} --dpi {params.dpi}"
        " --out {output.table} --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


# Chorna et al.: reconstruction between models on the order-8 cumulant descriptors (split by structure)
rule structure_reconstruction:
    input:
        blocks=rules.structure_cumulants.output.blocks,
        structures=rules.structure_cumulants.output.structures,
    output:
        table=f"{REC_DIR}/structure_reconstruction.csv",
        figure=figure_outputs("structure_reconstruction"),
    log:
        f"{LOGS}/reconstruction/structure_reconstruction.log",
    benchmark:
        f"{RUN}/benchmarks/reconstruction/structure_reconstruction.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: REC["threads"]
    resources:
        mem_mb=REC["mem_mb"],
        runtime=REC["runtime"],
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/structure_reconstruction.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        options=structure_options(),
        order=REC["structures"]["order"],
        dpi=config["figures"]["dpi"],
    shell:
        "OMP_NUM_THREADS=1 {params.py} {params.script} --models {params.models} --labels {params.labels:q}"
        " --controls {params.controls} --cumulants {input.blocks} --structures {input.structures}"
        " --order {params.order} {params.options} --workers {threads} --dpi {params.dpi}"
        " --out {output.table} --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


# Chorna et al.: does fine-tuning keep its pre-training bias? Related pairs and fine-tuning arms
rule finetune_bias:
    input:
        summary=rules.feature_reconstruction.output.summary,
        evals=REC_FT_EVAL,
        atoms=[f"{FT_DIR}/probes/atoms.csv"] if REC_FT_EVAL else [],
    output:
        table=f"{REC_DIR}/finetune_bias.csv",
        figure=figure_outputs("finetune_bias"),
    log:
        f"{LOGS}/reconstruction/finetune_bias.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/finetune_bias.py",
        models=" ".join(MODELS),
        controls=" ".join(CONTROLS),
        checkpoints=json.dumps({m: s["checkpoint"] for m, s in MODELS.items()}),
        families=json.dumps({m: s["family"] for m, s in MODELS.items()}),
        related=" ".join(",".join(p) for p in REC["related_pairs"]),
        evals=lambda wc, input: (
            f"--finetune-eval {' '.join(input.evals)} --finetune-atoms {input.atoms[0]}"
            if input.evals
            else ""
        ),
        n_test=REC["n_test"],
        seed=REC["seed"],
        dpi=config["figures"]["dpi"],
    shell:
        "{params.py} {params.script} --summary {input.summary} --models {params.models}"
        " --controls {params.controls} --checkpoints {params.checkpoints:q} --families {params.families:q}"
        " --related {params.related} {params.evals} --n-test {params.n_test} --seed {params.seed}"
        " --dpi {params.dpi} --out {output.table} --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


# Both papers' answers for the same pairs, their rank correlation, and where they disagree
rule papers_side_by_side:
    input:
        pairwise=rules.pairwise_metrics.output.csv,
        summary=rules.feature_reconstruction.output.summary,
    output:
        table=f"{REC_DIR}/papers_side_by_side.csv",
        correlation=f"{REC_DIR}/papers_rank_correlation.csv",
        disagreements=f"{REC_DIR}/papers_disagreements.csv",
    log:
        f"{LOGS}/reconstruction/papers_side_by_side.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/papers_side_by_side.py",
        models=" ".join(MODELS),
        labels=LABELS,
        controls=" ".join(CONTROLS),
        checkpoints=json.dumps({m: s["checkpoint"] for m, s in MODELS.items()}),
        sets=" ".join(ANCHOR_SETS),
    shell:
        "{params.py} {params.script} --pairwise {input.pairwise} --summary {input.summary}"
        " --models {params.models} --labels {params.labels:q} --controls {params.controls}"
        " --checkpoints {params.checkpoints:q} --anchor-sets {params.sets} --out {output.table}"
        " --out-correlation {output.correlation} --out-disagreements {output.disagreements} > {log} 2>&1"
        f"{ON_FAILURE}"


# How each paper's answer changes with the layer (checkpoints present at two layers)
rule layer_dependence:
    input:
        pairwise=rules.pairwise_metrics.output.csv,
        summary=rules.feature_reconstruction.output.summary,
    output:
        table=f"{REC_DIR}/layer_dependence.csv",
        summary=f"{REC_DIR}/layer_dependence_summary.csv",
    log:
        f"{LOGS}/reconstruction/layer_dependence.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/layer_dependence.py",
        models=" ".join(MODELS),
        layers=json.dumps({m: [s["checkpoint"], s["layer"]] for m, s in MODELS.items()}),
        anchors=PRIMARY_ANCHORS,
    shell:
        "{params.py} {params.script} --pairwise {input.pairwise} --summary {input.summary}"
        " --models {params.models} --layers {params.layers:q} --anchors {params.anchors}"
        " --out {output.table} --out-summary {output.summary} > {log} 2>&1"
        f"{ON_FAILURE}"
