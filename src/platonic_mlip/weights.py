"""The weights layer: where a checkpoint's weights come from, and the one local file its job loads.

Every family goes through here; adapters receive a local file or ``random`` and nothing else.

A model's ``source`` (registry or ``model_options.<model>.source``) is one of five kinds:

``random``   an untrained control, built by the adapter from the package's code: no file
``bundled``  a key of a checkpoint shipped inside the package wheel (the family's ``bundled`` keys in
             ``platonic_mlip.families``): the adapter's ``bundled_path(key)`` names the file
``url``      an http(s)/file URL, or the registry's own source of a model with an official ``url``:
             ``fetch_weights`` downloads it once into ``<cache>/<checkpoint>/<file name of the URL>``
``key``      any other package key (e.g. mace's ``medium-mpa-0``): ``fetch_weights`` asks the adapter
             for the package's own URL of it (``key_url(key)``, in the family's environment) and
             downloads it into ``<cache>/<checkpoint>/<key><family weights_suffix>``
``local``    a file the user provides (a path: contains ``/``, starts with ``~`` or ``.``, or ends in a
             weights suffix)

Checks before any weights are loaded (``check_file``), for every kind that has a file:
- ``model_options.<model>.sha256``, when set, must match; for bundled files too;
- a ``local`` file with no ``sha256`` is refused (checkpoints are pickles, and loading one runs code;
  mace-torch even makes every ``torch.load`` in its process unpickle) unless the config opts in with
  ``model_options.<model>.trust_weights_file: true``; the refusal prints the file's sha256 so it can be
  pinned;
- a downloaded file must still have the digest recorded beside it at download (``<file>.sha256``).

Standard library only (the Snakefile imports it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from .families import FAMILIES, family

KINDS = ("random", "constructed", "control", "bundled", "url", "key", "local")
SIDECAR = ".sha256"


class WeightsError(ValueError):
    """Weights that must not or cannot be loaded; the message names the model, file and config key."""


def _suffixes() -> tuple[str, ...]:
    return tuple(sorted({f["weights_suffix"] for f in FAMILIES.values()} | {".pt", ".pth", ".ckpt", ".tar"}))


def looks_local(source: str) -> bool:
    """Whether ``source`` names a file rather than a package key."""
    return "/" in source or source.startswith(("~", ".")) or source.endswith(_suffixes())


def plan(spec: dict, cache_dir) -> dict:
    """Where the weights of ``spec`` (a resolved model spec) come from.

    Returns ``{"kind", "source", "url", "key", "path"}``: ``path`` is the local file the job loads
    (None for ``random`` and ``bundled``, whose file only the family's environment knows), ``url`` the
    address to download (``url`` kind), ``key`` the package key (``bundled`` and ``key`` kinds).
    """
    from .models import MODELS

    source = str(spec.get("source", ""))
    fam = family(spec["family"])
    checkpoint = spec.get("checkpoint") or spec.get("name", "?")
    cache = str(cache_dir).rstrip("/")
    out = {"kind": None, "source": source, "url": None, "key": None, "path": None}
    default = MODELS.get(checkpoint, {}).get("source")
    if not source:
        raise WeightsError(
            f"model {checkpoint!r}: empty weights source (config key 'model_options.{checkpoint}.source')"
        )
    if source in ("random", "constructed", "control"):
        out["kind"] = source  # control: the run trains the file (its path is the run's, not the cache's)
    elif source in fam["bundled"]:
        out.update(kind="bundled", key=source)
    elif "://" in source or (source == default and spec.get("url")):
        url = source if "://" in source else spec["url"]
        name = PurePosixPath(urlsplit(url).path).name or "weights"
        out.update(kind="url", url=url, path=f"{cache}/{checkpoint}/{name}")
    elif looks_local(source):
        out.update(kind="local", path=source)
    else:
        out.update(kind="key", key=source, path=f"{cache}/{checkpoint}/{source}{fam['weights_suffix']}")
    return out


def sha256_of(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def record_digest(path) -> str:
    """Write ``<path>.sha256`` (the digest of a file just downloaded) and return the digest."""
    digest = sha256_of(path)
    Path(str(path) + SIDECAR).write_text(digest + "\n")
    return digest


def check_file(spec: dict, kind: str, path) -> str:
    """Verify the weights file ``path`` of kind ``kind`` before it is loaded; return its sha256.

    Raises WeightsError naming the model, the file and the config key to set.
    """
    model = spec.get("checkpoint") or spec.get("name", "?")
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"model {model!r}: weights file {path} does not exist (source {spec.get('source')!r})"
        )
    got = sha256_of(path)
    want = spec.get("sha256")
    if want and got.lower() != str(want).lower():
        raise WeightsError(
            f"model {model!r}: weights file {path} has sha256 {got}, but config key "
            f"'model_options.{model}.sha256' says {want}; refusing to load it"
        )
    if kind == "local" and not want and not spec.get("trust_weights_file"):
        raise WeightsError(
            f"model {model!r}: refusing to load local weights file {path} without a checksum: weights files "
            "are Python pickles and loading one runs code. If you trust it, pin it with config key "
            f"'model_options.{model}.sha256: {got}' (or set 'model_options.{model}.trust_weights_file: true')"
        )
    sidecar = Path(str(path) + SIDECAR)
    if kind == "control" and not sidecar.is_file():
        raise WeightsError(
            f"model {model!r}: trained-control weights {path} have no recorded digest ({sidecar.name}); "
            "the train_control rule writes it: rerun that rule"
        )
    if kind in ("url", "key", "control") and sidecar.is_file():
        recorded = sidecar.read_text().strip()
        if recorded and recorded.lower() != got.lower():
            raise WeightsError(
                f"model {model!r}: weights file {path} has changed since it was downloaded (sha256 {got}, "
                f"recorded {recorded} in {sidecar.name}); delete it and rerun to download it again"
            )
    return got
