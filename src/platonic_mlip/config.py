"""Config checks that give a clear message naming the key: misspelt keys, unknown models, cross-field rules.

Type and range checks live in ``workflow/schemas/config.schema.yaml`` (JSON schema, applied by the
workflow); this module adds what a schema cannot say well.
"""

from __future__ import annotations

import difflib

from .anchors import PAPER_N_ATOMS
from .models import ConfigError, checkpoint_specs, known_models, resolve, split_model_id


def unknown_keys(config: dict, schema: dict, prefix: str = "") -> list[str]:
    """Messages for keys of ``config`` that ``schema`` does not declare, with close matches.

    Walks nested objects whose schema lists ``properties`` and forbids additional properties.
    """
    problems = []
    if not isinstance(config, dict) or schema.get("type") != "object":
        return problems
    props = schema.get("properties", {})
    closed = schema.get("additionalProperties", True) is False
    for key, value in config.items():
        path = f"{prefix}{key}"
        if key in props:
            problems += unknown_keys(value, props[key], prefix=f"{path}.")
        elif closed:
            close = difflib.get_close_matches(str(key), list(props), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            problems.append(f"unknown config key {path!r}{hint} Known keys here: {', '.join(sorted(props))}")
    return problems


def model_specs(config: dict) -> dict[str, dict]:
    """Resolve ``config['models']`` (``name`` or ``name@layer``) with ``config['model_options']`` (keyed by
    checkpoint name) into {model id: spec}.

    Raises ConfigError for unknown models or layers, duplicate names, options for checkpoints not in the
    run, an anchor reference model that is not one of the run's models, a checkpoint at several layers
    whose family gives one per pass, and the ``published`` anchor set on anything but the full MP-20
    train split.
    """
    names = config["models"]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"config key 'models': listed twice: {', '.join(dupes)}")
    options = config.get("model_options") or {}
    checkpoints = {split_model_id(n)[0] for n in names}
    for name in options:
        base, layer = split_model_id(name)
        if layer is not None:
            raise ConfigError(
                f"config key 'model_options.{name}': options belong to the checkpoint; write "
                f"'model_options.{base}' (they apply to every layer of it)"
            )
        if name not in checkpoints:
            raise ConfigError(
                f"config key 'model_options.{name}': {name!r} is not in 'models' ({', '.join(names)})"
            )
    specs = {n: resolve(n, options.get(split_model_id(n)[0])) for n in names}
    checkpoint_specs(specs)  # raises for layers a family cannot give in one pass
    anchors = config["anchors"]
    refs = [("anchors.reference_model", anchors["reference_model"])]
    refs += [("anchors.reference_models", r) for r in anchors.get("reference_models") or []]
    for key, ref in refs:
        if ref not in specs:
            close = difflib.get_close_matches(ref, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"config key {key!r}: {ref!r} is not one of the run's models{hint}; "
                f"choose from {', '.join(names)}. All known models: {', '.join(known_models())}"
            )
    if "published" in anchors["sets"]:
        if not anchors.get("published"):
            raise ConfigError("config key 'anchors.sets' lists 'published' but 'anchors.published' is empty")
        if not is_full_split(config):
            raise ConfigError(
                "config key 'anchors.sets': the 'published' anchors index the full MP-20 train split "
                f"({PAPER_N_ATOMS:,} atoms); set 'structures.expected_atoms: {PAPER_N_ATOMS}' and no "
                "'structures.limit', or drop 'published'"
            )
    return specs


def is_full_split(config: dict) -> bool:
    """Whether the run is declared to use the whole MP-20 train split (the published anchors' array)."""
    st = config["structures"]
    return st.get("expected_atoms") == PAPER_N_ATOMS and not st.get("limit")
