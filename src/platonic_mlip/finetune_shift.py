"""How fine-tuning moves embeddings (paper Fig. 5a-c): norms, cosines and trajectories across checkpoints.

The paper: naive fine-tuning on Cu makes the embeddings of unseen Au atoms "collapse toward the origin";
multi-head fine-tuning keeps them "stable near their pre-trained positions". Here both are numbers, per
atom, between a checkpoint's embedding ``e_t`` and the pretrained model's ``e_0`` of the same atom:

* ``norm_ratio = |e_t| / |e_0|`` (collapse toward the origin: well below 1);
* ``cosine = cos(e_t, e_0)`` (a move of direction);
* ``rel_shift = |e_t - e_0| / |e_0|``.

Three spaces (``SPACES``): ``raw`` (the layer's vectors), ``fixed`` (Platonic coordinates
``cos(e, a_k)`` on the pretrained model's anchor vectors, held fixed across checkpoints: the frame of
the paper's Fig. 5a-c, "projected onto the pretrained model's anchor set") and ``own`` (each checkpoint
projected onto its own embeddings of the same anchor atoms: the Platonic view, in which a global
rescaling or rotation of the space moves nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from platonic_mlip.projection import project_onto

SPACES = ("raw", "fixed", "own")
MEASURES = ("norm_ratio", "cosine", "rel_shift")


def anchor_rows(anchor: Sequence[int]) -> np.ndarray:
    """Rows (K,) of the anchor atoms ordered by anchor index; ``anchor`` (N,) holds -1 for other atoms."""
    anchor = np.asarray(anchor, dtype=np.int64)
    rows = np.flatnonzero(anchor >= 0)
    order = np.argsort(anchor[rows], kind="stable")
    k = anchor[rows][order]
    if len(k) == 0 or not np.array_equal(k, np.arange(len(k))):
        raise ValueError(f"anchor indices must be 0..K-1 once each, got {len(k)} anchor rows")
    return rows[order]


def spaces(stack: np.ndarray, anchors: np.ndarray) -> dict[str, np.ndarray]:
    """Every space of a checkpoint stack: ``stack`` (T, N, D) with T[0] the pretrained model; ``anchors``
    (K,) rows of the anchor atoms. Returns {space: (T, N, D or K) float64}."""
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 3:
        raise ValueError(f"stack must be (checkpoints, atoms, dim), got shape {stack.shape}")
    fixed_anchors = stack[0][anchors]
    return {
        "raw": stack,
        "fixed": np.stack([project_onto(x, fixed_anchors, out_dtype=np.float64) for x in stack]),
        "own": np.stack([project_onto(x, x[anchors], out_dtype=np.float64) for x in stack]),
    }


def measures(x0: np.ndarray, xt: np.ndarray, eps: float = 1e-12) -> dict[str, np.ndarray]:
    """Per-row ``norm_ratio``, ``cosine`` and ``rel_shift`` (each (N,)) of ``xt`` (N, D) against ``x0``."""
    x0, xt = np.asarray(x0, dtype=np.float64), np.asarray(xt, dtype=np.float64)
    if x0.shape != xt.shape:
        raise ValueError(f"shapes differ: {x0.shape} vs {xt.shape}")
    n0 = np.linalg.norm(x0, axis=1)
    nt = np.linalg.norm(xt, axis=1)
    cos = np.einsum("ij,ij->i", x0, xt) / np.maximum(n0 * nt, eps)
    return {
        "norm_ratio": nt / np.maximum(n0, eps),
        "cosine": np.clip(cos, -1.0, 1.0),
        "rel_shift": np.linalg.norm(xt - x0, axis=1) / np.maximum(n0, eps),
    }


def shift_table(
    stacks: Mapping[tuple[str, int], tuple[np.ndarray, Sequence[int]]],
    atoms,
    groups: Sequence[str] = ("role", "element"),
):
    """Long table of the mean (and 10/50/90th percentiles) of every measure per arm, seed, epoch, space
    and atom group.

    ``stacks``: {(arm, seed): (stack (T, N, D), epochs (T,))}, T[0] the pretrained model (epoch 0);
    ``atoms``: DataFrame (N rows) with ``anchor`` (-1 for non-anchor atoms) and the ``groups`` columns.
    Anchor atoms themselves are left out of the groups (the other atoms of their structures, role ``run``,
    stay: how far fine-tuning moves the run's own atoms). Columns: arm, seed, epoch, space, *groups,
    n_atoms, measure, mean, p10, p50, p90.
    """
    import pandas as pd

    rows = []
    mask = atoms["anchor"].to_numpy() < 0
    for (arm, seed), (stack, epochs) in stacks.items():
        if stack.shape[1] != len(atoms):
            raise ValueError(
                f"arm {arm} seed {seed}: {stack.shape[1]} embedded atoms, table has {len(atoms)}"
            )
        by_space = spaces(stack, anchor_rows(atoms["anchor"]))
        for space, x in by_space.items():
            for t, epoch in enumerate(epochs):
                m = measures(x[0], x[t])
                for key, part in atoms[mask].groupby(list(groups), sort=True):
                    idx = part.index.to_numpy()
                    key = key if isinstance(key, tuple) else (key,)
                    for name in MEASURES:
                        v = m[name][idx]
                        rows.append(
                            dict(
                                arm=arm,
                                seed=int(seed),
                                epoch=int(epoch),
                                space=space,
                                **dict(zip(groups, key, strict=True)),
                                n_atoms=len(idx),
                                measure=name,
                                mean=float(np.mean(v)),
                                p10=float(np.percentile(v, 10)),
                                p50=float(np.percentile(v, 50)),
                                p90=float(np.percentile(v, 90)),
                            )
                        )
    return pd.DataFrame(rows)
