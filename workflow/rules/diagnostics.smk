# The shared space as a diagnostic and an interface (paper Fig. 5f-g and the applications of its
# abstract). Protocols are OURS (config key `diagnostics`, docs/diagnostics.md). Probe structures
# (rotated copies, perturbed held-out copies) are embedded by every checkpoint in one job each, and
# projected onto the run's own anchors; every diagnostic reads every model, raw and Platonic.


rule structure_properties:
    input:
        structures_input,
        atoms=rules.parse_structures.output.atoms,
    output:
        f"{RUN}/structures/properties.csv",
    log:
        f"{LOGS}/structure_properties.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/structure_properties.py",
        path=DOWNLOADED if SOURCE_IS_URL else sh_path(SOURCE_PATH),
        fmt=SOURCE_FORMAT,
    shell:
        "{params.py} {params.script} --source {params.path} --format {params.fmt}"
        " --atoms {input.atoms} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


rule probe_structures:
    input:
        structures=rules.parse_structures.output.structures,
        atoms=rules.parse_structures.output.atoms,
    output:
        structures=f"{PROBES}/structures.npz",
        atoms=f"{PROBES}/atoms.csv",
        table=f"{PROBES}/probes.csv",
        holdout=f"{PROBES}/holdout.csv",
        skipped=f"{PROBES}/probes_skipped.csv",
    log:
        f"{LOGS}/probe_structures.log",
    benchmark:
        f"{RUN}/benchmarks/probe_structures.tsv"
    priority: CRITICAL_PATH
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/probe_structures.py",
        options=diagnostic_options("probe_structures"),
    shell:
        "{params.py} {params.script} --structures {input.structures} --atoms {input.atoms}"
        " {params.options} --out-structures {output.structures} --out-atoms {output.atoms}"
        " --out-table {output.table} --out-holdout {output.holdout}"
        " --out-skipped {output.skipped} > {log} 2>&1"
        f"{ON_FAILURE}"


rule embed_probes:
    input:
        structures=rules.probe_structures.output.structures,
        weights=weights_input,
    output:
        npy=f"{PROBES}/embeddings/shards/{{checkpoint}}/0000.npy",
        meta=f"{PROBES}/embeddings/shards/{{checkpoint}}/0000.json",
    log:
        f"{LOGS}/embed_probes/{{checkpoint}}.log",
    benchmark:
        f"{RUN}/benchmarks/embed_probes/{{checkpoint}}.tsv"
    wildcard_constraints:
        checkpoint="|".join(re.escape(c) for c in CHECKPOINTS),
    priority: CRITICAL_PATH
    conda:
        lambda wc: str(ROOT / "envs" / f"{env_of(wc.checkpoint)}.yaml")
    threads: config["embed"]["threads"]
    resources:
        gpu=lambda wc: (
            config["embed"]["gpu"]
            if FAMILIES[CHECKPOINTS[wc.checkpoint]["family"]]["gpu"]
            else 0
        ),
        mem_mb=config["embed"]["mem_mb"],
        runtime=config["embed"]["runtime"],
    params:
        py=lambda wc: python_for(env_of(wc.checkpoint)),
        script=f"{SH_SCRIPTS}/embed.py",
        layers=lambda wc: ",".join(CHECKPOINTS[wc.checkpoint]["layers"]),
        options=embed_options,
        weights_file=weights_file_option,
        device=config["embed"]["device"],
        batch_atoms=config["embed"]["batch_atoms"],
    shell:
        "{params.py} {params.script} --model {wildcards.checkpoint} --layers {params.layers}"
        " --options {params.options:q} {params.weights_file}"
        " --structures {input.structures} --device {params.device} --threads {threads}"
        " --batch-atoms {params.batch_atoms} --on-unsupported skip --no-progress"
        " --out-npy {output.npy} --out-json {output.meta} > {log} 2>&1"
        f"{ON_FAILURE}"


rule gather_probe_embeddings:
    input:
        structures=rules.probe_structures.output.structures,
        npy=lambda wc: f"{PROBES}/embeddings/shards/{checkpoint_of(wc.model)}/0000.npy",
        meta=lambda wc: f"{PROBES}/embeddings/shards/{checkpoint_of(wc.model)}/0000.json",
    output:
        npy=f"{PROBES}/embeddings/{{model}}.npy",
        meta=f"{PROBES}/embeddings/{{model}}.json",
    log:
        f"{LOGS}/gather_probe_embeddings/{{model}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/gather_embeddings.py",
        layer=lambda wc: MODELS[wc.model]["layer"],
        label=lambda wc: MODELS[wc.model].get("label", wc.model),
    shell:
        "{params.py} {params.script} --structures {input.structures} --npy {input.npy}"
        " --json {input.meta} --model {wildcards.model:q} --layer {params.layer} --label {params.label:q}"
        " --out-npy {output.npy} --out-json {output.meta} > {log} 2>&1"
        f"{ON_FAILURE}"


rule project_probes:
    input:
        embeddings=f"{PROBES}/embeddings/{{model}}.npy",
        meta=f"{PROBES}/embeddings/{{model}}.json",
        atoms=rules.probe_structures.output.atoms,
        anchors=lambda wc: f"{RUN}/anchors/{anchors_of_space(wc.anchor_set)}.csv",
        run_embeddings=f"{RUN}/embeddings/{{model}}.npy",
    output:
        f"{PROBES}/platonic/{{anchor_set}}/{{model}}.npy",
    log:
        f"{LOGS}/project_probes/{{anchor_set}}/{{model}}.log",
    wildcard_constraints:
        anchor_set="|".join(SPACES),
    conda:
        "../../envs/analysis.yaml"
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/project.py",
        center=lambda wc: "--center" if wc.anchor_set.endswith(CENTRED) else "",
    shell:
        "{params.py} {params.script} --embeddings {input.embeddings} --anchors {input.anchors}"
        " --anchor-embeddings {input.run_embeddings} --atoms {input.atoms} --meta {input.meta}"
        " --model {wildcards.model:q} {params.center} --out {output} > {log} 2>&1"
        f"{ON_FAILURE}"


rule fig5f_equivariant_fraction:
    input:
        unpack(run_spaces),
        structures=rules.parse_structures.output.structures,
        atoms=rules.parse_structures.output.atoms,
    output:
        table=f"{DIAG_DIR}/fig5f_equivariant_fraction.csv",
        skipped=f"{DIAG_DIR}/fig5f_equivariant_fraction_skipped.csv",
        figure=figure_outputs("fig5f_equivariant_fraction"),
    log:
        f"{LOGS}/diagnostics/fig5f_equivariant_fraction.log",
    benchmark:
        f"{RUN}/benchmarks/diagnostics/fig5f_equivariant_fraction.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig5f_equivariant_fraction.py",
        spaces=SPACE_ARGS,
        options=diagnostic_options("fig5f_equivariant_fraction"),
    shell:
        "{params.py} {params.script} --structures {input.structures} --atoms {input.atoms}"
        " {params.spaces} --raw {input.raw} --meta {input.meta} --platonic {input.platonic}"
        " {params.options} --out-csv {output.table} --out-skipped {output.skipped}"
        " --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


rule fig5g_rotational_sensitivity:
    input:
        unpack(run_and_probe_spaces),
        atoms=rules.parse_structures.output.atoms,
        probe_table=rules.probe_structures.output.table,
        probe_atoms=rules.probe_structures.output.atoms,
    output:
        table=f"{DIAG_DIR}/fig5g_rotational_sensitivity.csv",
        summary=f"{DIAG_DIR}/fig5g_rotational_sensitivity_summary.csv",
        skipped=f"{DIAG_DIR}/fig5g_rotational_sensitivity_skipped.csv",
        figure=figure_outputs("fig5g_rotational_sensitivity"),
    log:
        f"{LOGS}/diagnostics/fig5g_rotational_sensitivity.log",
    benchmark:
        f"{RUN}/benchmarks/diagnostics/fig5g_rotational_sensitivity.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/fig5g_rotational_sensitivity.py",
        spaces=SPACE_ARGS,
        options=diagnostic_options("fig5g_rotational_sensitivity"),
    shell:
        "{params.py} {params.script} --atoms {input.atoms} --probe-table {input.probe_table}"
        " --probe-atoms {input.probe_atoms} {params.spaces}"
        " --raw {input.raw} --meta {input.meta} --platonic {input.platonic}"
        " --probe-raw {input.probe_raw} --probe-meta {input.probe_meta}"
        " --probe-platonic {input.probe_platonic} {params.options}"
        " --out-csv {output.table} --out-summary {output.summary} --out-skipped {output.skipped}"
        " --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


rule atypical_structures:
    input:
        unpack(run_and_probe_spaces),
        atoms=rules.parse_structures.output.atoms,
        probe_table=rules.probe_structures.output.table,
        probe_atoms=rules.probe_structures.output.atoms,
        holdout=rules.probe_structures.output.holdout,
    output:
        auc=f"{DIAG_DIR}/atypical_structures.csv",
        top=f"{DIAG_DIR}/atypical_structures_top.csv",
        scores=f"{DIAG_DIR}/atypical_structures_scores.csv",
        skipped=f"{DIAG_DIR}/atypical_structures_skipped.csv",
        figure=figure_outputs("atypical_structures"),
    log:
        f"{LOGS}/diagnostics/atypical_structures.log",
    benchmark:
        f"{RUN}/benchmarks/diagnostics/atypical_structures.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/atypical_structures.py",
        spaces=SPACE_ARGS,
        options=diagnostic_options("atypical_structures"),
    shell:
        "{params.py} {params.script} --atoms {input.atoms} --probe-table {input.probe_table}"
        " --probe-atoms {input.probe_atoms} --holdout {input.holdout} {params.spaces}"
        " --raw {input.raw} --meta {input.meta} --platonic {input.platonic}"
        " --probe-raw {input.probe_raw} --probe-meta {input.probe_meta}"
        " --probe-platonic {input.probe_platonic} {params.options}"
        " --out-auc {output.auc} --out-top {output.top} --out-scores {output.scores}"
        " --out-skipped {output.skipped} --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"


rule embedding_arithmetic:
    input:
        unpack(run_spaces),
        atoms=rules.parse_structures.output.atoms,
    output:
        table=f"{DIAG_DIR}/embedding_arithmetic.csv",
        transfer=f"{DIAG_DIR}/embedding_arithmetic_transfer.csv",
        figure=figure_outputs("embedding_arithmetic"),
    log:
        f"{LOGS}/diagnostics/embedding_arithmetic.log",
    benchmark:
        f"{RUN}/benchmarks/diagnostics/embedding_arithmetic.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/embedding_arithmetic.py",
        spaces=SPACE_ARGS,
        options=diagnostic_options("embedding_arithmetic"),
    shell:
        "{params.py} {params.script} --atoms {input.atoms} {params.spaces}"
        " --raw {input.raw} --meta {input.meta} --platonic {input.platonic} {params.options}"
        " --out-csv {output.table} --out-transfer {output.transfer} --out-fig {output.figure}"
        " > {log} 2>&1"
        f"{ON_FAILURE}"


rule zero_shot_stitching:
    input:
        unpack(run_spaces),
        atoms=rules.parse_structures.output.atoms,
        structures=rules.parse_structures.output.structures,
        properties=rules.structure_properties.output[0],
    output:
        table=f"{DIAG_DIR}/zero_shot_stitching.csv",
        figure=figure_outputs("zero_shot_stitching"),
    log:
        f"{LOGS}/diagnostics/zero_shot_stitching.log",
    benchmark:
        f"{RUN}/benchmarks/diagnostics/zero_shot_stitching.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
    params:
        py=python_for("analysis"),
        script=f"{SH_SCRIPTS}/zero_shot_stitching.py",
        spaces=SPACE_ARGS,
        options=diagnostic_options("zero_shot_stitching"),
    shell:
        "{params.py} {params.script} --atoms {input.atoms} --structures {input.structures}"
        " --properties {input.properties} {params.spaces}"
        " --raw {input.raw} --meta {input.meta} --platonic {input.platonic} {params.options}"
        " --out-csv {output.table} --out-fig {output.figure} > {log} 2>&1"
        f"{ON_FAILURE}"
