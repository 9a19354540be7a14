# Config loading and validation, paths, interpreters and input functions shared by every rule file.
import json
import os
import re
import shlex
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

ROOT = Path(workflow.basedir)
SRC = ROOT / "src"
SCRIPTS = ROOT / "workflow" / "scripts"
# Shell commands name the checkout and the environments through variables set here (every job, local or
# on a cluster node, runs this file first), so that no path of the machine is written into a command,
# the report or the provenance Snakemake keeps.
os.environ.update(PLATONIC_ROOT=str(ROOT))
SH_SCRIPTS = '"$PLATONIC_ROOT"/workflow/scripts'


def sh_path(path):
    """``path`` quoted for a shell command; a path inside the checkout relative to $PLATONIC_ROOT."""
    path = Path(path)
    if path.is_absolute() and path.is_relative_to(ROOT):
        return f'"$PLATONIC_ROOT"/{shlex.quote(str(path.relative_to(ROOT)))}'
    return shlex.quote(str(path))


SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
sys.path.insert(0, str(SRC))
# Every rule's shell command ends with `" > {log} 2>&1" f"{ON_FAILURE}"`: when the command fails, the hook
# appends "KILLED: exit status 137 = SIGKILL (...)" to the log for a signal (the out-of-memory killer or a
# scheduler cannot be caught by the job), prints "<job>: <the log's first ERROR:/KILLED: line> (full log:
# <path>)" to the console (job: the log's path under logs/, e.g. embed/7net-0/0000) and exits with the
# command's status.
ON_FAILURE = f" || bash {SH_SCRIPTS}/on_failure.sh $? {{log:q}}"

from platonic_mlip.config import is_full_split, model_specs, unknown_keys
from platonic_mlip.families import FAMILIES
from platonic_mlip.finetune import ADAPTERS as FINETUNE_ADAPTERS
from platonic_mlip.finetune import FAMILY_ARMS as FINETUNE_ARMS
from platonic_mlip.models import ConfigError, checkpoint_specs, role_of
from platonic_mlip.structures import StructureError, cif_files, sha256_of, source_format
from platonic_mlip.weights import plan as weights_plan

if (
    not workflow.overwrite_configfiles
):  # no --configfile: the embedded default (--config still applies)

    configfile: str(ROOT / "config" / "demo.yaml")


_problems = unknown_keys(config, yaml.safe_load(SCHEMA.read_text()))
if _problems:
    raise WorkflowError("invalid config:\n  " + "\n  ".join(_problems))
validate(config, str(SCHEMA))
try:
    MODELS = model_specs(config)  # {model id ("name" or "name@layer"): spec}
    CHECKPOINTS = checkpoint_specs(
        MODELS
    )  # {checkpoint: spec with its layers}: one embedding job each
except ConfigError as err:
    raise WorkflowError(str(err)) from None


wildcard_constraints:
    model="[^/]+",
    checkpoint="[^/]+",


RUN = f"results/{config['run_name']}"
LOGS = f"{RUN}/logs"
ANCHOR_SETS = config["anchors"]["sets"]
PRIMARY_ANCHORS = ANCHOR_SETS[0]
# Platonic spaces: one per anchor set, plus (OURS, projection.center) the same anchors after centring
CENTRED = "-centred"
SPACES = ANCHOR_SETS + (
    [f"{s}{CENTRED}" for s in ANCHOR_SETS] if config["projection"]["center"] else []
)


def anchors_of_space(space):
    return space[: -len(CENTRED)] if space.endswith(CENTRED) else space


LABELS = json.dumps({m: s.get("label", m) for m, s in MODELS.items()})
REFERENCE = config["anchors"]["reference_model"]
# trained controls (source: control): the run trains their weights (rule train_control)
CONTROL_CKPTS = [c for c, s in CHECKPOINTS.items() if s.get("source") == "control"]
CTL = config["controls"]
# each model's role (platonic_mlip.models.ROLES); controls = every model that is not trained (untrained
# random weights, element-identity baselines, physics references): left out of the trained pair means
ROLES = {m: role_of(s) for m, s in MODELS.items()}
CONTROLS = [m for m, r in ROLES.items() if r != "trained"]
# OURS: the chain to the all-pairs table (train controls -> embed -> anchors -> project -> pairwise metrics)
# is the run's longest path; its jobs go first when cores are free (the anchor studies and diagnostics fill
# in around it). Every other job that runs a network (the diagnostic probes' embeddings, the fine-tuning
# arms and their evaluation, the phonons) and the small jobs that feed them share it: the networks run first,
# two at a time on the demo's cores, and no fine-tuning or probe embedding is left for the end, where it would
# hold the run with one core idle. Snakemake's rule priority, higher first, default 0.
CRITICAL_PATH = 10
# the anchor studies (K sweep, reference sensitivity) read trained-pair means, with the untrained controls
# as the fallback of a run with fewer than two trained models: they run on the trained models (and the
# DIRECT references) alone, or with the untrained controls when the fallback needs them; the other controls
# (docs/controls.md) always stay out
_TRAINED = [m for m, r in ROLES.items() if r == "trained"]
_STUDY_ROLES = ("trained",) if len(_TRAINED) >= 2 else ("trained", "untrained")
ANCHOR_STUDY_MODELS = [
    m
    for m, r in ROLES.items()
    if r in _STUDY_ROLES or m == REFERENCE or m in config["anchors"]["reference_models"]
]
SWEEP_K = config["anchors"]["sweep"]["k"]
OTHER_REFERENCES = [r for r in config["anchors"]["reference_models"] if r != REFERENCE]
FULL_SPLIT = is_full_split(config)
FIG_FORMATS = ("png", "pdf")

WEIGHTS = config["weights"]["cache_dir"]
if not Path(WEIGHTS).is_absolute():
    WEIGHTS = str(ROOT / WEIGHTS)  # shared by every run of this checkout

USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
VENVS = Path(config["envs"]["venv_dir"])
if not VENVS.is_absolute():
    VENVS = ROOT / VENVS
os.environ.update(PLATONIC_VENV_DIR=str(VENVS))


def python_for(env):
    """Interpreter of an environment: the venv's python, or the active conda env's with --sdm conda."""
    if USE_CONDA:
        return "python"
    py = VENVS / env / "bin" / "python"
    if env == "analysis" and not py.exists():
        return sys.executable  # Snakemake's own interpreter carries the analysis stack
    return f'"$PLATONIC_VENV_DIR"/{env}/bin/python'


def env_of(checkpoint):
    """The environment of a checkpoint's family (family registry)."""
    return FAMILIES[CHECKPOINTS[checkpoint]["family"]]["env"]


def check_envs():
    """Stop before any job when a needed family virtualenv is missing (venv mode only)."""
    if USE_CONDA:
        return
    envs = sorted({env_of(c) for c in CHECKPOINTS})
    missing = [e for e in envs if not (VENVS / e / "bin" / "python").exists()]
    if missing:
        raise WorkflowError(
            f"environment(s) {', '.join(missing)} not found under {VENVS} (config key 'envs.venv_dir'). "
            "Create them with `make envs` (python envs/venvs.py create), or run with --sdm conda."
        )


def weights_of(checkpoint):
    """Where a checkpoint's weights come from (platonic_mlip.weights.plan): kind, url, key, local path."""
    return weights_plan(CHECKPOINTS[checkpoint], WEIGHTS)


def weights_of_checkpoint(checkpoint):
    """The local weights file of a checkpoint as an input list (empty for bundled or random weights); a
    trained control's is the run's own train_control output."""
    if checkpoint in CONTROL_CKPTS:
        return [control_checkpoint(checkpoint)]
    path = weights_of(checkpoint)["path"] if checkpoint in CHECKPOINTS else None
    return [path] if path else []


def control_checkpoint(checkpoint):
    return f"{RUN}/controls/{checkpoint}/model.pth"


def weights_option(checkpoint):
    """``--weights-file <file>`` of a checkpoint for a model-loading script, or nothing."""
    return " ".join(
        f"--weights-file {sh_path(p)}" for p in weights_of_checkpoint(checkpoint)
    )


def weights_input(wc):
    return weights_of_checkpoint(wc.checkpoint)


def weights_file_option(wc):
    return weights_option(wc.checkpoint)


def embed_options(wc):
    """model_options of a checkpoint, as JSON for the embedding job."""
    return json.dumps(config["model_options"].get(wc.checkpoint, {}))


def checkpoint_of(model):
    return MODELS[model]["checkpoint"]


def shard_ids():
    """Zero-padded shard ids: fixed by the config (a static DAG; no checkpoints)."""
    size = config["embed"]["shard_structures"]
    if not size:
        return ["0000"]
    bounds = [
        config["structures"]["limit"],
        config["structures"]["expected_structures"],
    ]
    bounds = [b for b in bounds if b]
    if not bounds:
        raise WorkflowError(
            "config key 'embed.shard_structures' needs 'structures.expected_structures' (or "
            "'structures.limit') to fix the number of shards"
        )
    return [f"{i:04d}" for i in range(-(-min(bounds) // size))]


SHARDS = shard_ids()


def shard_files(checkpoint, ext):
    return [f"{RUN}/embeddings/shards/{checkpoint}/{s}.{ext}" for s in SHARDS]


def embedding_meta(models=None):
    return [f"{RUN}/embeddings/{m}.json" for m in (models or MODELS)]


def embeddings(models=None):
    return [f"{RUN}/embeddings/{m}.npy" for m in (models or MODELS)]


def platonic(anchor_set):
    return [f"{RUN}/platonic/{anchor_set}/{m}.npy" for m in MODELS]


# the spaces of the all-pairs table, in its order: raw embeddings, then each Platonic space
PAIRWISE_SPACES = ["raw", *SPACES]


def space_matrices(wildcards):
    """The matrices of every model in one space (``raw`` embeddings or a Platonic space) and the metadata
    (rules pairwise_space and feature_reconstruction_space)."""
    space = wildcards.space
    return {
        "matrices": embeddings() if space == "raw" else platonic(space),
        "meta": embedding_meta(),
    }


def figure(name):
    return [f"{RUN}/figures/{name}.{ext}" for ext in FIG_FORMATS]


#: every figure of the report, once: the question it answers (report category), a subcategory, the
#: paper panel and what it shows; its caption is workflow/report/<name>.rst
REPORT_FIGURES = {
    "fig1_pca": ("Maps", "raw spaces", "Fig. 1", "PCA of each model's raw embeddings"),
    "fig3b_platonic_pca_random": (
        "Maps",
        "Platonic spaces",
        "Fig. 3b",
        "PCA, random anchors",
    ),
    "fig3c_platonic_pca_direct": (
        "Maps",
        "Platonic spaces",
        "Fig. 3c",
        "PCA, DIRECT anchors",
    ),
    "maps_raw_vs_platonic": (
        "Maps",
        "raw beside Platonic",
        "ours",
        "raw and Platonic maps per model",
    ),
    "fig4a_mknn": ("Alignment", "heatmaps", "Fig. 4a", "mutual k-NN of every pair"),
    "fig4b_procrustes": (
        "Alignment",
        "heatmaps",
        "Fig. 4b",
        "Procrustes score of every pair",
    ),
    "fig4c_ot": (
        "Alignment",
        "heatmaps",
        "Fig. 4c",
        "optimal-transport cost of every pair",
    ),
    "fig4d_composite": (
        "Alignment",
        "heatmaps",
        "Fig. 4d",
        "composite score of every pair",
    ),
    "fig2b_anchors_pca": (
        "Anchors",
        "where they lie",
        "Fig. 2b",
        "anchors on the reference map",
    ),
    "fig3a_anchor_sweep": ("Anchors", "how many", "Fig. 3a", "alignment against K"),
    "fig4e_element_pca": (
        "Chemistry",
        "element maps",
        "Fig. 4e",
        "PCA of element vectors",
    ),
    "fig4f_element_similarity": (
        "Chemistry",
        "element similarity",
        "Fig. 4f",
        "agreement of models",
    ),
    "fig5f_equivariant_fraction": (
        "Diagnostics",
        "symmetry",
        "Fig. 5f",
        "symmetry-equivalent atoms, two-NN collapse, TwoNN dimension",
    ),
    "fig5g_rotational_sensitivity": (
        "Diagnostics",
        "rotation",
        "Fig. 5g",
        "embeddings of rigidly rotated structures",
    ),
    "atypical_structures": (
        "Diagnostics",
        "atypical structures",
        "ours",
        "perturbed copies ranked against their originals",
    ),
    "embedding_arithmetic": (
        "Interface",
        "embedding arithmetic",
        "ours",
        "element analogies by nearest centroid",
    ),
    "fig5abc_finetune_embeddings": (
        "Fine-tuning",
        "embeddings",
        "Fig. 5a-c",
        "unseen Au and held-out Cu atoms across fine-tuning checkpoints",
    ),
    "fig5de_dimer_curves": (
        "Fine-tuning",
        "dimers",
        "Fig. 5d-e",
        "Au-Au and Cu-Cu dimer curves of every arm",
    ),
    "phonon_bands": (
        "Physics",
        "phonons",
        "ours",
        "phonon bands per structure, models overlaid",
    ),
    "zero_shot_stitching": (
        "Interface",
        "zero-shot stitching",
        "ours",
        "one model's readout on another's vectors",
    ),
    "feature_reconstruction": (
        "Reconstruction",
        "atom level",
        "Chorna et al.",
        "GFRE and LFRE of every ordered pair, raw and Platonic, and the asymmetry",
    ),
    "cumulant_orders": (
        "Reconstruction",
        "structure level",
        "Chorna et al.",
        "what each cumulant order adds, within each model",
    ),
    "structure_reconstruction": (
        "Reconstruction",
        "structure level",
        "Chorna et al.",
        "GFRE and LFRE between models on order-8 cumulant descriptors",
    ),
    "finetune_bias": (
        "Reconstruction",
        "fine-tuning",
        "Chorna et al.",
        "related and fine-tuned models against unrelated pairs",
    ),
}


def figure_outputs(name):
    """A figure's files: the PNG in the report (category, subcategory, labels), the PDF beside it."""
    category, subcategory, panel, shows = REPORT_FIGURES[name]
    png, pdf = figure(name)
    labels = {"panel": panel, "shows": shows}
    shown = report(png, f"../report/{name}.rst", category, subcategory, labels)
    return [shown, pdf]


#: the report's landing text: the static introduction plus this run's findings, once the run has them
LANDING = f"{RUN}/report/landing.rst"
INTRO = ROOT / "workflow" / "report" / "workflow.rst"


def landing_text():
    """For the Snakefile's ``report:``: the run's landing text if written, else the introduction alone."""
    return str(Path(LANDING).absolute()) if Path(LANDING).exists() else str(INTRO)


#: CSV tables the report shows as HTML pages: name -> (CSV, title, category, caption)
def report_tables():
    tables = {
        "element_similarity": (
            f"{RUN}/elements/similarity_correlation.csv",
            "Correlation of the element similarity matrices of every pair of models (Fig. 4f)",
            "Chemistry",
            "element_similarity_table",
        ),
    }
    if SWEEP_K:
        tables["anchor_sweep"] = (
            f"{RUN}/metrics/anchor_sweep.csv",
            "Alignment against the number of anchors K (Fig. 3a), mean over model pairs",
            "Anchors",
            "anchor_sweep_table",
        )
    if DIAGNOSTICS:
        for name, (title, category) in DIAG_TABLES.items():
            tables[name] = (f"{DIAG_DIR}/{name}.csv", title, category, f"{name}_table")
    if FINETUNE:
        for name, (title, category) in FT_TABLES.items():
            tables[name] = (f"{FT_DIR}/{name}.csv", title, category, f"{name}_table")
    if PHONONS:
        for name, (title, category) in PH_TABLES.items():
            tables[name] = (f"{PH_DIR}/{name}.csv", title, category, f"{name}_table")
    if RECONSTRUCTION:
        for name, (title, category) in REC_TABLES.items():
            tables[name] = (f"{REC_DIR}/{name}.csv", title, category, f"{name}_table")
    if OTHER_REFERENCES:
        tables["reference_sensitivity"] = (
            f"{RUN}/metrics/reference_sensitivity_summary.csv",
            "How much the metrics move when DIRECT runs on another reference model",
            "Anchors",
            "reference_sensitivity",
        )
    return tables


#: the diagnostics (OURS protocols; config key `diagnostics`, rules in diagnostics.smk)
DIAG = config["diagnostics"]
DIAGNOSTICS = DIAG["enabled"]
DIAG_DIR = f"{RUN}/diagnostics"
PROBES = f"{RUN}/probes"  # rotated and perturbed copies of structures, embedded by every model
#: every diagnostic's tables in the report: name -> (CSV, title, category, caption)
DIAG_TABLES = {
    "fig5f_equivariant_fraction": (
        "Symmetry-equivalent atoms whose embeddings coincide, two-NN collapse and TwoNN dimension (Fig. 5f)",
        "Diagnostics",
    ),
    "fig5g_rotational_sensitivity_summary": (
        "How far embeddings move when a structure is rigidly rotated (Fig. 5g)",
        "Diagnostics",
    ),
    "atypical_structures": (
        "Atypical-structure score: ROC AUC of perturbed copies against held-out originals",
        "Diagnostics",
    ),
    "atypical_structures_top": (
        "The most atypical structures of the run, per model",
        "Diagnostics",
    ),
    "embedding_arithmetic": (
        "Element analogies by nearest-centroid retrieval, against shuffled labels",
        "Interface",
    ),
    "embedding_arithmetic_transfer": (
        "An analogy offset learned in one model, applied in another",
        "Interface",
    ),
    "zero_shot_stitching": (
        "Zero-shot stitching: one model's readout on another model's vectors",
        "Interface",
    ),
}
#: config keys of `diagnostics` each script takes (section -> keys), passed as --key-name value(s)
#: ("key=option_name" where the script's option has another name)
DIAG_OPTIONS = {
    "probe_structures": {
        "rotation": ["axes", "angles", "bacec_a", "mp20_structures"],
        "atypical": [
            "holdout_fraction",
            "n_perturbed",
            "perturbations",
            "rattle_sigma",
            "strain",
        ],
        "": ["seed"],
    },
    "fig5f_equivariant_fraction": {
        "symmetry": ["symprec", "coincide_tol", "spacegroups", "max_atoms"],
        "": ["seed", "scale_pairs"],
    },
    "fig5g_rotational_sensitivity": {
        "rotation": ["noise_tol"],
        "": ["seed", "scale_pairs"],
    },
    "atypical_structures": {"atypical": ["knn_k", "top"], "": ["seed", "scale_pairs"]},
    "embedding_arithmetic": {"arithmetic": ["min_atoms", "shuffles"], "": ["seed"]},
    "zero_shot_stitching": {
        "stitching": ["test_fraction", "properties=property_names"],
        "": ["seed"],
    },
}


def _option_value(value):
    if isinstance(value, list):
        return " ".join(
            ",".join(map(str, v)) if isinstance(v, list) else str(v) for v in value
        )
    return repr(value) if isinstance(value, float) else str(value)


def diagnostic_options(script):
    """Command-line options of a diagnostic script, from its config keys (DIAG_OPTIONS)."""
    opts = []
    for section, keys in DIAG_OPTIONS[script].items():
        values = DIAG[section] if section else DIAG
        for key in keys:  # "key=option": the config key's option has another name
            key, _, option = key.partition("=")
            option = (option or key).replace("_", "-")
            opts.append(f"--{option} {_option_value(values[key])}")
    return " ".join(opts)


#: the model and space arguments every diagnostic takes (platonic_mlip.spaces)
SPACE_ARGS = (
    f"--models {' '.join(MODELS)} --spaces {' '.join(SPACES)} --labels {shlex.quote(LABELS)}"
    + (f" --controls {' '.join(CONTROLS)}" if CONTROLS else "")
    + f" --dpi {config['figures']['dpi']}"
)


def space_files(base, prefix=""):
    """Raw embeddings, metadata and Platonic matrices (space-major) of every model under ``base``."""
    return {
        f"{prefix}raw": [f"{base}/embeddings/{m}.npy" for m in MODELS],
        f"{prefix}meta": [f"{base}/embeddings/{m}.json" for m in MODELS],
        f"{prefix}platonic": [
            f"{base}/platonic/{s}/{m}.npy" for s in SPACES for m in MODELS
        ],
    }


def run_spaces(wildcards):
    return space_files(RUN)


def run_and_probe_spaces(wildcards):
    return {**space_files(RUN), **space_files(PROBES, "probe_")}


def claims_diagnostics():
    """The diagnostics' tables claims 6 and 7 read (none when the diagnostics are off)."""
    if not DIAGNOSTICS:
        return []
    return [
        f"{DIAG_DIR}/fig5g_rotational_sensitivity_summary.csv",
        f"{DIAG_DIR}/fig5f_equivariant_fraction.csv",
    ]


def diagnostics_outputs():
    if not DIAGNOSTICS:
        return []
    out = [f"{DIAG_DIR}/{name}.csv" for name in DIAG_TABLES]
    for name, (category, *_) in REPORT_FIGURES.items():
        if category in ("Diagnostics", "Interface"):
            out += figure(name)
    return out


FIG4 = {
    "fig4a_mknn": "mknn",
    "fig4b_procrustes": "procrustes_score",
    "fig4c_ot": "ot_normalised",
    "fig4d_composite": "composite",
}


#: paper Fig. 3b/c: PCA of the Platonic embeddings under each anchor set
FIG3_PCA = {
    "fig3b_platonic_pca_random": "random",
    "fig3c_platonic_pca_direct": "direct",
}


def published_anchors():
    path = config["anchors"]["published"]
    return str(path if Path(path).is_absolute() else ROOT / path)


def metric_options():
    """Command-line options of the anchor-study scripts: the paper's sample and the metrics."""
    m = config["metrics"]
    opts = (
        f"--n-sample {m['n_sample']} --sample-seed {m['sample_seed']} --knn-k {m['knn_k']}"
        f" --knn-tie-tol {m['knn_tie_tol']!r}"
        f" --threshold-init {config['anchors']['threshold_init']}"
        f" --composite-weights '{json.dumps(m['composite_weights'])}'"
    )
    return opts + ("" if m["knn_normalize"] else " --no-knn-normalize")


#: the fine-tuning experiment (paper Fig. 5a-e; config key `finetune`, rules in finetune.smk)
FT = config["finetune"]
FINETUNE = FT["enabled"]
FT_DIR = f"{RUN}/finetune"
FT_MODEL = FT["pretrained"]
if FINETUNE and FT_MODEL not in MODELS:
    raise WorkflowError(
        f"config key 'finetune.pretrained': {FT_MODEL!r} is not a model of this run "
        f"(config key 'models': {', '.join(MODELS)})"
    )
FT_CKPT = MODELS[FT_MODEL]["checkpoint"] if FT_MODEL in MODELS else FT_MODEL
FT_FAMILY = MODELS[FT_MODEL]["family"] if FT_MODEL in MODELS else ""
if FINETUNE and FT_FAMILY not in FINETUNE_ADAPTERS:
    raise WorkflowError(
        f"config key 'finetune.pretrained': {FT_MODEL!r} is a {FT_FAMILY} model; fine-tuning is "
        f"implemented for {', '.join(FINETUNE_ADAPTERS)}"
    )
if FINETUNE and set(FT["arms"]) - set(FINETUNE_ARMS[FT_FAMILY]):
    raise WorkflowError(
        f"config key 'finetune.arms': {FT_FAMILY} runs the arms {', '.join(FINETUNE_ARMS[FT_FAMILY])}, "
        f"not {', '.join(sorted(set(FT['arms']) - set(FINETUNE_ARMS[FT_FAMILY])))}"
    )
if FINETUNE and FT_MODEL in MODELS and ROLES[FT_MODEL] != "trained":
    raise WorkflowError(
        f"config key 'finetune.pretrained': {FT_MODEL!r} is "
        + (
            "an untrained control"
            if ROLES[FT_MODEL] == "untrained"
            else f"a control ({ROLES[FT_MODEL]})"
        )
        + "; choose a trained model"
    )
FT_ENV = FAMILIES[FT_FAMILY]["env"] if FT_FAMILY else "analysis"
FT_LABEL = MODELS[FT_MODEL].get("label", FT_MODEL) if FT_MODEL in MODELS else FT_MODEL
FT_OPTIONS = json.dumps(config["model_options"].get(FT_CKPT, {}))
#: (arm, seed) of every fine-tuning run, and its path part "arm/seedN"
FT_ARM_SEEDS = [(arm, seed) for arm in FT["arms"] for seed in FT["seeds"]]
FT_RUNS = [f"{arm}/seed{seed}" for arm, seed in FT_ARM_SEEDS]
#: the experiment's tables in the report: name -> (title, category)
FT_TABLES = {
    "fig5abc_finetune_embeddings": (
        "How fine-tuning on Cu moves the embeddings of unseen Au and held-out Cu atoms (Fig. 5a-c)",
        "Fine-tuning",
    ),
    "fig5de_dimer_curves": (
        "Au-Au and Cu-Cu dimer wells of the pretrained model, each arm and the reference (Fig. 5d-e)",
        "Fine-tuning",
    ),
    "finetune_accuracy": (
        "Errors on held-out Cu and on Au beside the Au embedding shift, per arm and checkpoint",
        "Fine-tuning",
    ),
}


FT_WEIGHTS_OPTION = weights_option(FT_CKPT)
#: the user's labelled Cu data (config `finetune.data`), an input so that editing it reruns the stage
FT_DATA_INPUT = [FT["data"]] if FT["data"] else []


def finetune_data_options():
    """Command-line options of finetune_data.py from config key `finetune`."""
    gen = FT["generate"]
    opts = [
        f"--seed {FT['seed']}",
        f"--fractions {' '.join(map(str, FT['fractions']))}",
    ]
    if FT["data"]:
        opts += [
            "--mode validate",
            f"--input {sh_path(FT['data'])}",
            f"--energy-key {FT['energy_key']}",
            f"--forces-key {FT['forces_key']}",
        ]
    for key in (
        "n_strained",
        "n_rattled",
        "n_surfaces",
        "n_clusters",
        "au_rattled",
        "au_clusters",
    ):
        opts.append(f"--{key.replace('_', '-')} {gen[key]}")
    opts.append(f"--dimer-distances {' '.join(map(str, gen['dimer_distances']))}")
    return " ".join(opts)


def finetune_train_options():
    """Training options of finetune.py from config key `finetune.train`."""
    tr = FT["train"]
    keys = (
        "epochs",
        "checkpoint_every",
        "lr",
        "batch_size",
        "force_weight",
        "stress_weight",
    )
    return " ".join(
        f"--{k.replace('_', '-')} {tr[k]}" for k in keys if tr[k] is not None
    )


def finetune_outputs():
    if not FINETUNE:
        return []
    out = [f"{FT_DIR}/{name}.csv" for name in FT_TABLES]
    for name, (category, *_) in REPORT_FIGURES.items():
        if category == "Fine-tuning":
            out += figure(name)
    return out


def all_outputs():
    out = [f"{RUN}/metrics/pairwise.csv", f"{RUN}/metrics/pairwise_ci.html"]
    out += [f"{RUN}/claims.csv", f"{RUN}/claims.html", f"{RUN}/report/findings.html"]
    out += [f"{RUN}/report/tables/{t}.html" for t in report_tables()]
    out += [f"{RUN}/interactive/{p}" for p in ("maps.html", "pairwise.html")]
    out.append(f"{RUN}/interactive/platonic_maps.chemiscope.json.gz")
    out.append(f"{RUN}/structures/summary.json")
    out += [f"{RUN}/embeddings/{m}.json" for m in MODELS]
    names = [
        "fig1_pca",
        *FIG4,
        "fig2b_anchors_pca",
        "fig4e_element_pca",
        "fig4f_element_similarity",
        "maps_raw_vs_platonic",
    ]
    names += [n for n, s in FIG3_PCA.items() if s in ANCHOR_SETS]
    if SWEEP_K:
        names.append("fig3a_anchor_sweep")
    for name in names:
        out += figure(name)
    out += diagnostics_outputs()
    out += finetune_outputs()
    out += phonon_outputs()
    out += reconstruction_outputs()
    if OTHER_REFERENCES:
        out.append(f"{RUN}/metrics/reference_sensitivity_summary.csv")
    if FULL_SPLIT and "direct" in ANCHOR_SETS and config["anchors"]["published"]:
        out.append(f"{RUN}/anchors/overlap_published.json")
    return out


# The structures: a URL is downloaded once (download_structures); a local file or folder is read
# where it is, as an input, so that editing it reruns everything downstream.

SOURCE = config["structures"]["source"]
SOURCE_IS_URL = "://" in SOURCE


def local_source():
    """A local structures.source: as given when absolute or found from the working directory,
    else relative to the repository."""
    if Path(SOURCE).is_absolute() or Path(SOURCE).exists():
        return SOURCE
    return str(ROOT / SOURCE)


try:
    SOURCE_PATH = SOURCE if SOURCE_IS_URL else local_source()
    SOURCE_FORMAT = source_format(SOURCE_PATH, config["structures"]["format"])
    if SOURCE_IS_URL and SOURCE_FORMAT == "cif-dir":
        raise StructureError(
            f"config key 'structures.source': {SOURCE} is a URL; a folder of CIF files must be local"
        )
    if not SOURCE_IS_URL and not Path(SOURCE_PATH).exists():
        raise StructureError(
            f"config key 'structures.source': {SOURCE_PATH} does not exist"
            + (
                ""
                if Path(SOURCE).is_absolute()
                else " (relative paths: from the repository)"
            )
        )
except StructureError as err:
    raise WorkflowError(str(err)) from None
if config["structures"]["limit"] and config["structures"]["expected_atoms"]:
    print(
        "note: config key 'structures.expected_atoms' is checked only without 'structures.limit'",
        file=sys.stderr,
    )
DOWNLOADED = f"{RUN}/structures/download/{PurePosixPath(urlsplit(SOURCE).path).name or 'structures'}"


def structures_input(wildcards):
    """The file parse_structures reads: the download, the local file, or every CIF of the folder."""
    if SOURCE_IS_URL:
        return [DOWNLOADED]
    if SOURCE_FORMAT == "cif-dir":
        try:
            return [str(p) for p in cif_files(SOURCE_PATH)]
        except StructureError as err:
            raise WorkflowError(str(err)) from None
    return [SOURCE_PATH]


def structures_options():
    s = config["structures"]
    opts = [f"--format {SOURCE_FORMAT}", f"--id-key {shlex.quote(s['id_key'])}"]
    opts.append(f"--min-distance {s['min_distance'] or 0}")
    for key in ("limit", "expected_structures", "expected_atoms"):
        if s[key]:
            opts.append(f"--{key.replace('_', '-')} {s[key]}")
    if s["sha256"] and not SOURCE_IS_URL:
        opts.append(f"--sha256 {s['sha256']}")
    return " ".join(opts)


# ---- phonons (issue 12; config key `phonons`, rules in phonons.smk, docs/phonons.md) -------------------
# OURS throughout: the paper gives no phonon protocol. Every trained model of the run (or `phonons.models`)
# and, with `phonons.finetuned`, the last checkpoint of every fine-tuning arm and seed.
PH = config["phonons"]
PHONONS = PH["enabled"]
PH_DIR = f"{RUN}/phonons"


def first_per_checkpoint(models):
    """The first model of each checkpoint among ``models``, in order."""
    out = {}
    for m in models:
        out.setdefault(MODELS[m]["checkpoint"], m)
    return list(out.values())


# by default every trained checkpoint once: phonons depend on the checkpoint, not on the layer read
PH_MODELS = (
    first_per_checkpoint([m for m in MODELS if m not in CONTROLS])
    if PH["models"] is None
    else list(PH["models"])
)
if PHONONS:
    _unknown = [m for m in PH_MODELS if m not in MODELS]
    if _unknown:
        raise WorkflowError(
            f"config key 'phonons.models': {', '.join(map(repr, _unknown))} not a model of this run "
            f"(config key 'models': {', '.join(MODELS)})"
        )
    _controls = [m for m in PH_MODELS if m in CONTROLS]
    if _controls:
        raise WorkflowError(
            f"config key 'phonons.models': {', '.join(map(repr, _controls))}: untrained control(s) or "
            "other controls without pretrained weights have no meaningful phonons; choose trained models"
        )
    if not PH_MODELS:
        raise WorkflowError("config key 'phonons.models': no trained model to test")
#: fine-tuning runs ("arm/seedN") whose last checkpoint is tested, and every tested label
PH_FT_RUNS = FT_RUNS if PHONONS and PH["finetuned"] and FINETUNE else []
PH_FT_LABELS = {r: f"{FT_MODEL} {a} s{sd}" for r, (a, sd) in zip(FT_RUNS, FT_ARM_SEEDS)}
#: the phonon tables in the report: name -> (title, category)
PH_TABLES = {
    "phonon_imaginary": (
        "Imaginary phonon modes on the q mesh and the lowest frequency, per model and structure",
        "Physics",
    ),
    "phonon_disagreement": (
        "How far each model's phonon frequencies lie from the median over models, per structure",
        "Physics",
    ),
    "phonon_distortion": (
        "Distortion of the shared space beside the phonon failures, per model and structure",
        "Physics",
    ),
    "phonon_distortion_correlation": (
        "Rank correlation of each distortion measure with each phonon failure measure",
        "Physics",
    ),
}


def phonon_gpu(model):
    """GPU resource of a phonon job of a model (0 for families that run on the CPU)."""
    return PH["gpu"] if FAMILIES[MODELS[model]["family"]]["gpu"] else 0


def phonon_options():
    """Phonon parameters of phonons.py from config key `phonons`."""
    keys = (
        "fmax",
        "steps",
        "min_length",
        "distance",
        "npoints",
        "mesh",
        "imag_tol",
        "acoustic_tol",
    )
    opts = " ".join(f"--{k.replace('_', '-')} {PH[k]}" for k in keys)
    return opts + (" --symmetrize-fc" if PH["symmetrize_fc"] else "")


def phonon_structure_options():
    """Options of phonon_structures.py from config key `phonons`."""
    opts = f"--reference {' '.join(PH['structures'])} --n-run {PH['run_structures']}"
    opts += f" --max-atoms {PH['max_atoms']} --seed {PH['seed']}"
    if PH["lattice"]:
        opts += " --lattice " + " ".join(f"{k}={v}" for k, v in PH["lattice"].items())
    return opts


def phonon_results(ext):
    """The phonon results of every tested model and fine-tuning run, in the report's order."""
    out = [f"{PH_DIR}/models/{m}.{ext}" for m in PH_MODELS]
    return out + [f"{PH_DIR}/finetuned/{r}.{ext}" for r in PH_FT_RUNS]


def phonon_labels():
    return [*PH_MODELS, *(PH_FT_LABELS[r] for r in PH_FT_RUNS)]


def phonon_outputs():
    if not PHONONS:
        return []
    return [f"{PH_DIR}/{name}.csv" for name in PH_TABLES] + figure("phonon_bands")


# The second paper (Chorna et al., arXiv 2512.05717) on the same embeddings: config key
# `reconstruction`, rules in reconstruction.smk, docs/reconstruction.md.
REC = config["reconstruction"]
RECONSTRUCTION = REC["enabled"]
REC_DIR = f"{RUN}/reconstruction"
REC_STRUCT = REC["structures"]["enabled"]
if RECONSTRUCTION:
    _bad = [s for s in REC["spaces"] if s != "raw" and s not in SPACES]
    if _bad:
        raise WorkflowError(
            f"config key 'reconstruction.spaces': {', '.join(map(repr, _bad))} not a space of this run; "
            f"choose from raw, {', '.join(SPACES)}"
        )
    for _pair in REC["related_pairs"]:
        _unknown = [m for m in _pair if m not in MODELS]
        if _unknown:
            raise WorkflowError(
                f"config key 'reconstruction.related_pairs': {', '.join(map(repr, _unknown))} not a model "
                f"of this run (config key 'models': {', '.join(MODELS)})"
            )
    _unknown = [m for m in REC["structures"]["order_models"] or [] if m not in MODELS]
    if _unknown:
        raise WorkflowError(
            f"config key 'reconstruction.structures.order_models': {', '.join(map(repr, _unknown))} not a "
            f"model of this run (config key 'models': {', '.join(MODELS)})"
        )
    if REC_STRUCT and REC["structures"]["order"] > REC["structures"]["max_order"]:
        raise WorkflowError(
            "config key 'reconstruction.structures.order' "
            f"({REC['structures']['order']}) exceeds 'reconstruction.structures.max_order' "
            f"({REC['structures']['max_order']})"
        )
#: the reconstruction tables in the report: name -> (title, category)
REC_TABLES = {
    "atoms_summary": (
        "Feature reconstruction errors (GFRE, LFRE) of every ordered model pair, per space, with intervals",
        "Reconstruction",
    ),
    "papers_side_by_side": (
        "Both papers' measures for every model pair: Platonic alignment beside reconstruction errors",
        "Reconstruction",
    ),
    "papers_rank_correlation": (
        "Rank correlation across model pairs of each alignment score with each reconstruction similarity",
        "Reconstruction",
    ),
    "papers_disagreements": (
        "The model pairs the two papers' measures rank furthest apart",
        "Reconstruction",
    ),
    "layer_dependence_summary": (
        "How each paper's answer changes when a checkpoint's features come from another layer",
        "Reconstruction",
    ),
    "finetune_bias": (
        "Fine-tuned and related models against unrelated pairs: does fine-tuning keep its pre-training bias?",
        "Reconstruction",
    ),
}
if RECONSTRUCTION and REC_STRUCT:
    REC_TABLES["single_atom_structures"] = (
        "Structures left out of the cumulant descriptors (single atom, or skipped by a model)",
        "Reconstruction",
    )
#: the models whose cumulant orders are compared within the model
REC_ORDER_MODELS = list(REC["structures"]["order_models"] or MODELS)
REC_FT_EVAL = (
    [f"{FT_DIR}/eval/{r}/embeddings.npz" for r in FT_RUNS]
    if RECONSTRUCTION and REC["finetuned"] and FINETUNE
    else []
)


def reconstruction_options():
    opts = f"--n-test {REC['n_test']} --seed {REC['seed']} --stratify {REC['stratify']}"
    opts += f" --repeats {REC['repeats']} --max-train {REC['max_train'] or 0}"
    opts += f" --lfre-test {REC['lfre_test'] or 0}" + (
        "" if REC["lfre"] else " --no-lfre"
    )
    lfre_repeats = REC["lfre_repeats"]
    opts += f" --lfre-repeats {-1 if lfre_repeats is None else lfre_repeats}"
    opts += f" --roles {shlex.quote(json.dumps(ROLES))}"
    return opts + f" --control-pairs {config['metrics']['control_pairs']}"


def structure_options():
    st = REC["structures"]
    opts = (
        f"--n-test {st['n_test']} --seed {REC['seed']} --lfre-k-max {st['lfre_k_max']}"
    )
    opts += f" --max-train {st['max_train'] or 0} --lfre-test {st['lfre_test'] or 0}"
    return opts + ("" if st["lfre"] else " --no-lfre")


def reconstruction_outputs():
    if not RECONSTRUCTION:
        return []
    out = [f"{REC_DIR}/{name}.csv" for name in REC_TABLES]
    out += figure("feature_reconstruction") + figure("finetune_bias")
    if REC_STRUCT:
        out += figure("cumulant_orders") + figure("structure_reconstruction")
    return out
