# platonic-mlip: MP-20 structures -> per-model embeddings -> anchors -> Platonic projection ->
# pairwise metrics -> the paper's figures. Default config: config/demo.yaml (the embedded default);
# the full paper: --configfile config/config.yaml.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/structures.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/anchors.smk"
include: "workflow/rules/project.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/elements.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/phonons.smk"
include: "workflow/rules/reconstruction.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/report.smk"


report: landing_text()


onstart:
    check_envs()


rule all:
    default_target: True
    input:
        all_outputs(),
