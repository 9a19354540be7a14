"""Tables of phonon results across models: imaginary modes, disagreement, correlation with a distortion.

Pure functions on numpy arrays and pandas frames (numpy, pandas, scipy only), usable from the analysis
environment and from the family environments (``platonic_mlip.phonons`` re-exports
``frequency_disagreement``). Inputs are what ``workflow/scripts/phonons.py`` writes: one CSV row per
(model, structure) and per structure the mesh frequencies, (nq, n_modes) THz on the same q points for every
model.

Disagreement (OURS): per structure, each model's mesh frequencies flattened and sorted (the frequency
distribution, which needs no matching of branches across models), the element-wise median over the models,
and each model's RMS difference from that median (THz).

Distortion of the shared space (OURS), per (model, structure): ``orbit_spread`` (embeddings of
symmetry-equivalent atoms), ``rotation_spread`` (embeddings of a rigidly rotated copy), ``consensus_distance``
(the structure's mean Platonic vector against the median over the trained models); ``distortion_correlations``
ranks each against each phonon failure measure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

KEYS = ("model", "structure")


def frequency_disagreement(frequencies: Mapping[str, np.ndarray]) -> dict[str, float]:
    """RMS difference (THz) of each model's sorted frequencies from the median over models.

    ``frequencies``: {model: array of any shape (e.g. (nq, n_modes) mesh frequencies)}; all of one size.
    Returns {model: rms}. With one model every value is 0; with two both get half their RMS difference.
    Raises ValueError for an empty mapping, sizes that differ (naming the models) or non-finite values.
    """
    if not frequencies:
        raise ValueError("no models to compare")
    flat = {m: np.sort(np.asarray(f, dtype=float).ravel()) for m, f in frequencies.items()}
    sizes = {m: v.size for m, v in flat.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"frequency arrays of different sizes cannot be compared: {sizes}")
    bad = [m for m, v in flat.items() if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"non-finite frequencies of model(s) {', '.join(map(str, bad))}")
    stacked = np.stack(list(flat.values()))  # (n_models, n)
    median = np.median(stacked, axis=0)
    rms = np.sqrt(np.mean((stacked - median[None]) ** 2, axis=1))
    return {m: float(r) for m, r in zip(flat, rms, strict=True)}


def disagreement_table(mesh: Mapping[str, Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """Long table of ``frequency_disagreement`` per structure: columns structure, model, n_models,
    rms_from_median_THz.

    ``mesh``: {model: {structure: (nq, n_modes) mesh frequencies}}. A structure is compared over the models
    that have it (structures of one model only get 0); structures in first-seen order.
    """
    structures: list[str] = []
    for per_model in mesh.values():
        structures += [s for s in per_model if s not in structures]
    rows = []
    for s in structures:
        have = {m: per_model[s] for m, per_model in mesh.items() if s in per_model}
        for m, rms in frequency_disagreement(have).items():
            rows.append(dict(structure=s, model=m, n_models=len(have), rms_from_median_THz=rms))
    return pd.DataFrame(rows, columns=["structure", "model", "n_models", "rms_from_median_THz"])


def imaginary_table(rows: pd.DataFrame, value: str = "n_imaginary") -> pd.DataFrame:
    """Model x structure table of ``value`` (a column of the phonon CSVs), models as rows in first-seen
    order, structures as columns in first-seen order.

    Raises ValueError naming a missing column or duplicate (model, structure) rows.
    """
    missing = [c for c in (*KEYS, value) if c not in rows.columns]
    if missing:
        raise ValueError(f"phonon table lacks column(s) {', '.join(missing)}")
    dup = rows.duplicated(list(KEYS), keep=False)
    if dup.any():
        pairs = sorted(set(map(tuple, rows.loc[dup, list(KEYS)].astype(str).to_numpy())))
        raise ValueError(f"duplicate (model, structure) rows: {pairs[:5]}")
    table = rows.pivot(index="model", columns="structure", values=value)
    return table.reindex(index=pd.unique(rows["model"]), columns=pd.unique(rows["structure"]))


def failure_correlation(
    distortion: pd.DataFrame,
    failure: pd.DataFrame,
    distortion_col: str,
    failure_col: str,
    keys: Sequence[str] = KEYS,
) -> dict:
    """Spearman rank correlation between a per-(model, structure) distortion and a failure measure.

    ``distortion`` and ``failure``: frames with the ``keys`` columns and ``distortion_col`` /
    ``failure_col``; rows are matched on ``keys`` (inner join) and pairs with a missing value dropped.
    Returns {rho, p, n} (scipy.stats.spearmanr, two-sided); rho and p are NaN with fewer than 3 pairs or a
    constant column. Raises ValueError naming a missing column or duplicate keys.
    """
    from scipy.stats import spearmanr

    keys = list(keys)
    for name, frame, col in (("distortion", distortion, distortion_col), ("failure", failure, failure_col)):
        missing = [c for c in (*keys, col) if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} table lacks column(s) {', '.join(missing)}")
        if frame.duplicated(keys).any():
            raise ValueError(f"{name} table has duplicate {tuple(keys)} rows")
    left = distortion[[*keys, distortion_col]].rename(columns={distortion_col: "_x"})
    right = failure[[*keys, failure_col]].rename(columns={failure_col: "_y"})
    both = left.merge(right, on=keys, how="inner").dropna(subset=["_x", "_y"])
    n = len(both)
    x, y = both["_x"].to_numpy(float), both["_y"].to_numpy(float)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return dict(rho=float("nan"), p=float("nan"), n=n)
    res = spearmanr(x, y)
    return dict(rho=float(res.statistic), p=float(res.pvalue), n=n)


# --- distortion of the shared space -----------------------------------------------------------------------
DISTORTIONS = ("sym_spread", "rot_spread", "platonic_distance")
FAILURES = ("n_imaginary", "min_frequency_THz", "acoustic_gamma_max_THz")


def _mean_norm(e: np.ndarray) -> float:
    norm = float(np.linalg.norm(e, axis=1).mean())
    if not norm > 0:
        raise ValueError("embeddings of zero norm: the spread is undefined")
    return norm


def orbit_spread(embeddings: np.ndarray, orbits: Sequence[int]) -> float:
    """RMS distance of atoms' embeddings from their orbit's mean, over the mean embedding norm.

    ``embeddings`` (n_atoms, D); ``orbits`` (n_atoms,) an orbit label per atom (spglib's
    ``equivalent_atoms``). Atoms alone in their orbit contribute 0 (so a 1-atom cell gives 0). Raises
    ValueError for mismatched lengths or embeddings of zero norm.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    orbits = np.asarray(orbits)
    if e.ndim != 2 or len(orbits) != len(e):
        raise ValueError(
            f"embeddings {e.shape} and orbits {orbits.shape} do not fit (n_atoms, D), (n_atoms,)"
        )
    dev = np.empty_like(e)
    for o in np.unique(orbits):
        sel = orbits == o
        dev[sel] = e[sel] - e[sel].mean(axis=0)
    return float(np.sqrt((dev**2).sum(axis=1).mean()) / _mean_norm(e))


def rotation_spread(embeddings: np.ndarray, rotated: np.ndarray) -> float:
    """Largest per-atom distance between the embeddings of a structure and of its rotated copy (same atom
    order), over the mean embedding norm. ValueError for shapes that differ."""
    e = np.asarray(embeddings, dtype=np.float64)
    r = np.asarray(rotated, dtype=np.float64)
    if e.shape != r.shape or e.ndim != 2:
        raise ValueError(f"embeddings {e.shape} and rotated {r.shape} differ")
    return float(np.linalg.norm(e - r, axis=1).max() / _mean_norm(e))


def consensus_distance(
    platonic: Mapping[str, Mapping[str, np.ndarray]], consensus: Sequence[str]
) -> pd.DataFrame:
    """Distance of each model's mean Platonic vector of a structure from the median over ``consensus``.

    ``platonic``: {model: {structure: (n_atoms, K) Platonic vectors}}; ``consensus``: the models whose
    element-wise median of mean vectors is the consensus (the run's trained models; those lacking a structure
    are skipped). Returns columns model, structure, n_consensus, platonic_distance (RMS over the K
    coordinates, i.e. the Euclidean distance over sqrt(K)); NaN where no consensus model has the structure.
    ValueError for an unknown consensus model or differing K.
    """
    unknown = [m for m in consensus if m not in platonic]
    if unknown:
        raise ValueError(f"consensus model(s) without Platonic vectors: {', '.join(unknown)}")
    means = {
        m: {s: np.asarray(v, dtype=np.float64).mean(axis=0) for s, v in per.items()}
        for m, per in platonic.items()
    }
    ks = {v.size for per in means.values() for v in per.values()}
    if len(ks) > 1:
        raise ValueError(f"Platonic vectors of different lengths K: {sorted(ks)}")
    rows = []
    for m, per in means.items():
        for s, v in per.items():
            have = [means[c][s] for c in consensus if s in means[c]]
            dist = (
                float(np.sqrt(np.mean((v - np.median(np.stack(have), axis=0)) ** 2)))
                if have
                else float("nan")
            )
            rows.append(dict(model=m, structure=s, n_consensus=len(have), platonic_distance=dist))
    return pd.DataFrame(rows, columns=["model", "structure", "n_consensus", "platonic_distance"])


def distortion_correlations(
    table: pd.DataFrame,
    distortions: Sequence[str] = DISTORTIONS,
    failures: Sequence[str] = FAILURES,
    keys: Sequence[str] = KEYS,
    floor: float = 0.0,
    group: str = "structure",
) -> pd.DataFrame:
    """``failure_correlation`` of every distortion column against every failure column of one table.

    ``floor`` (OURS): distortion values below it are set to 0 first (numerical noise of an invariant model,
    e.g. float32 round-off, would otherwise be ranked). Besides the pooled correlation (rho, p, n) the
    within-``group`` one (``rho_within``, ``p_within``): both columns minus their median over the rows of
    the same ``group`` value (structure), so that what differs between structures (size, chemistry) does not
    drive the rank. Returns columns distortion, failure, n, rho, p, rho_within, p_within (columns missing
    from ``table`` are skipped).
    """
    rows = []
    for d in distortions:
        for f in failures:
            if d not in table.columns or f not in table.columns:
                continue
            t = table[[*keys, d, f]].copy()
            t[d] = t[d].where(~(t[d].abs() < floor), 0.0)
            res = failure_correlation(t, t, d, f, keys)
            row = dict(distortion=d, failure=f, n=res["n"], rho=res["rho"], p=res["p"])
            if group in t.columns:
                c = t.copy()
                for col in (d, f):
                    c[col] = c[col] - c.groupby(group)[col].transform("median")
                within = failure_correlation(c, c, d, f, keys)
                row.update(rho_within=within["rho"], p_within=within["p"])
            rows.append(row)
    return pd.DataFrame(rows, columns=["distortion", "failure", "n", "rho", "p", "rho_within", "p_within"])
