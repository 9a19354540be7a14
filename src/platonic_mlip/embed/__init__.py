"""Per-atom embeddings from MLIPs: one loader module per model family (mace, sevenn, orb).

Each family module imports its own package lazily and is used only inside that family's environment.
"""

from .base import Embedder, UnsupportedElementsError, embed_structures, load_embedder

__all__ = ["Embedder", "UnsupportedElementsError", "embed_structures", "load_embedder"]
