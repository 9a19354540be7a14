"""Config checks that give a clear message naming the key: misspelt keys, unknown models, cross-field rules.

Type and range checks live in ``workflow/schemas/config.schema.yaml`` (JSON schema, applied by the
workflow); this module adds what a schema cannot say well.
"""

from __future__ import annotations

import difflib

from .models import ConfigError, known_models, resolve


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
    """Resolve ``config['models']`` with ``config['model_options']`` into {name: spec}.

    Raises ConfigError for unknown models, duplicate names, options for models not in the run, and an
    anchor reference model that is not one of the run's models.
    """
    names = config["models"]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"config key 'models': listed twice: {', '.join(dupes)}")
    options = config.get("model_options") or {}
    for name in options:
        if name not in names:
            raise ConfigError(
                f"config key 'model_options.{name}': {name!r} is not in 'models' ({', '.join(names)})"
            )
    specs = {n: resolve(n, options.get(n)) for n in names}
    ref = config["anchors"]["reference_model"]
    if ref not in specs:
        close = difflib.get_close_matches(ref, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"config key 'anchors.reference_model': {ref!r} is not one of the run's models{hint}; "
            f"choose from {', '.join(names)}. All known models: {', '.join(known_models())}"
        )
    return specs
