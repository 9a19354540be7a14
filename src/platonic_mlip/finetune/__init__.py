"""Fine-tuning pretrained interatomic potentials (paper Fig. 5a-e): naive, multi-head and replay arms.

``platonic_mlip.finetune.sevenn`` runs inside the sevenn environment (it imports sevenn and torch lazily);
this package module itself imports nothing heavy, so the arm names can be read anywhere.
"""

ARMS = ("naive", "multihead", "replay")

#: families whose checkpoints the workflow fine-tunes: family -> module with ``Settings`` and ``fine_tune``
#: (``platonic_mlip.families``' family names). SevenNet runs here for real on the CPU; MACE is the paper's
#: own configuration (``mace_run_train``).
ADAPTERS = {
    "sevenn": "platonic_mlip.finetune.sevenn",
    "mace": "platonic_mlip.finetune.mace",
}
#: the arms each family runs (mace has no single-head rehearsal: ``platonic_mlip.finetune.mace``)
FAMILY_ARMS = {"sevenn": ARMS, "mace": ("naive", "multihead")}

#: the model option that selects a head of a multi-head checkpoint, per family (``models.OVERRIDABLE``)
HEAD_OPTION = {"sevenn": "modal", "mace": "head"}


def summary_heads(summary: dict) -> dict[str, str] | None:
    """{"target": name, "pretrained": name} of a multi-head fine-tuning summary (sevenn's ``modals``,
    mace's ``heads``), None for a single-head arm."""
    for key in ("modals", "heads"):
        heads = summary.get(key)
        if heads:
            return {"target": str(heads["target"]), "pretrained": str(heads["pretrained"])}
    return None
