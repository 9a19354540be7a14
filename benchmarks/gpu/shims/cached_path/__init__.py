"""GPU kit shim for ``cached_path`` (orb-models imports it to download weights; the real package pulls in
boto3, botocore and google-cloud-storage, 25 MB of wheels). The GPU machine reaches no network, and the kit's
Orb models have random weights: every download fails here, saying so. Used only by device.sh's wheel
installs."""

import os
from pathlib import Path


def get_cache_dir() -> Path:
    return Path(os.environ.get("CACHED_PATH_CACHE_ROOT", Path.home() / ".cache" / "cached_path"))


def cached_path(url_or_filename, *args, **kwargs):
    path = Path(str(url_or_filename))
    if path.exists():
        return path
    raise RuntimeError(
        f"cached_path shim (benchmarks/gpu/shims): no download on the GPU machine: {url_or_filename}"
    )
