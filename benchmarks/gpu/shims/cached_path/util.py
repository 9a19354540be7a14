"""GPU kit shim: see ``cached_path/__init__.py``."""


def find_latest_cached(url, cache_dir=None):
    return None
