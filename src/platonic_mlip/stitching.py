"""Zero-shot model stitching: a readout fit on one model's vectors, applied unchanged to another's
(protocol OURS; the paper names the application, not its protocol).

If two models' Platonic spaces agree, a readout trained on model A's Platonic vectors predicts as well
from model B's (the relative-representation argument of Moschella et al.). Ours:

* **split** -- by structure (``split_structures``: a seeded permutation, a fraction ``test_fraction``,
  OURS 0.25, held out), the same for every model and task, so no structure has atoms on both sides; only
  held-out structures are scored;
* **readouts** -- per atom, the IUPAC group (``chemistry.group_of``; f-block atoms have none and are left
  out) by multinomial logistic regression on standardised vectors, scored by accuracy; per structure, a
  property (formation energy per atom, band gap) from the mean of the structure's atom vectors by ridge
  regression on standardised vectors (regularisation chosen by leave-one-out over ``ALPHAS``), scored by
  R^2. The standardisation is part of the readout: fit on A, applied unchanged to B;
* **scores** for an ordered pair (A, B): ``transfer`` -- A's readout (its standardisation included) on
  B's held-out vectors; ``transfer_target_scaled`` -- A's readout with the standardisation swapped for B's
  own (mean and standard deviation of B's training vectors: no labels of B are used), which forgives a
  shift or rescaling of the coordinates between the spaces; ``own`` -- B's readout on B's; ``baseline`` --
  the constant readout (majority group / mean property of A's training set) on B's held-out labels. Raw
  spaces of different widths cannot take each other's readout (NaN).

A stitching that works has transfer close to own and well above baseline; between unrelated spaces the
transfer falls to about the baseline (or below it).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from platonic_mlip.arithmetic import indicator

#: OURS: fraction of structures held out for scoring
TEST_FRACTION = 0.25
#: OURS: training atoms of the per-atom readout (a seeded subsample; speed)
MAX_TRAIN_ATOMS = 3000
#: OURS: iterations and tolerance of the logistic regression (lbfgs); on the demo's spaces a tolerance of
#: 1e-3 changes held-out accuracies by < 0.005 against sklearn's 1e-4, in half the time
MAX_ITER = 1000
TOL = 1e-3
#: OURS: ridge penalties tried (RidgeCV, efficient leave-one-out)
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)

CLASSIFY, REGRESS = "classification", "regression"
METRICS = {CLASSIFY: "accuracy", REGRESS: "r2"}


class Split(NamedTuple):
    """One model's training and held-out data in one space (rows with no NaN)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split_structures(n_structures: int, test_fraction: float = TEST_FRACTION, seed: int = 0) -> np.ndarray:
    """(n_structures,) bool, True for held-out structures: ``round(test_fraction * n)`` of them (at least
    one, and at least one left to train on), drawn by ``numpy.random.default_rng(seed).permutation``."""
    if n_structures < 2:
        raise ValueError(f"split_structures: {n_structures} structure(s), need at least 2")
    if not 0 < test_fraction < 1:
        raise ValueError(f"split_structures: test_fraction {test_fraction} not in (0, 1)")
    n_test = min(n_structures - 1, max(1, round(test_fraction * n_structures)))
    test = np.zeros(n_structures, dtype=bool)
    test[np.random.default_rng(seed).permutation(n_structures)[:n_test]] = True
    return test


def atom_split(
    structure_index: np.ndarray,
    test_structures: np.ndarray,
    labelled: np.ndarray | None = None,
    max_train: int | None = MAX_TRAIN_ATOMS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) atom indices: atoms of training / held-out structures (``test_structures``,
    bool per structure) among ``labelled`` atoms; at most ``max_train`` training atoms, a subsample drawn
    by ``numpy.random.default_rng(seed)`` (sorted). Every atom of a structure is on one side."""
    structure_index = np.asarray(structure_index)
    labelled = np.ones(len(structure_index), dtype=bool) if labelled is None else np.asarray(labelled, bool)
    side = np.asarray(test_structures, dtype=bool)[structure_index]
    train = np.flatnonzero(labelled & ~side)
    if max_train is not None and len(train) > max_train:
        train = np.sort(np.random.default_rng(seed).choice(train, max_train, replace=False))
    return train, np.flatnonzero(labelled & side)


def pool(x: np.ndarray, structure_index: np.ndarray, n_structures: int) -> np.ndarray:
    """(n_structures, D) mean of each structure's rows of ``x`` (N, D); NaN where its rows are NaN
    (a structure the model skipped)."""
    return np.asarray(indicator(np.asarray(structure_index), n_structures) @ np.asarray(x, dtype=np.float64))


def fit_readout(kind: str, x: np.ndarray, y: np.ndarray, max_iter: int = MAX_ITER, alphas=ALPHAS):
    """A fitted scikit-learn pipeline: standardisation + logistic regression (``classification``) or
    + RidgeCV over ``alphas`` (``regression``)."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == CLASSIFY:
        model = LogisticRegression(max_iter=max_iter, tol=TOL)
    elif kind == REGRESS:
        model = RidgeCV(alphas=np.asarray(alphas, dtype=np.float64))
    else:
        raise ValueError(f"fit_readout: unknown kind {kind!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a rare non-converged fit is still a readout to score
        return make_pipeline(StandardScaler(), model).fit(np.asarray(x, dtype=np.float64), y)


def score(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy (classification) or R^2 (regression; NaN with fewer than two held-out values)."""
    y_true = np.asarray(y_true)
    if not len(y_true):
        return float("nan")
    if kind == CLASSIFY:
        return float(np.mean(np.asarray(y_pred) == y_true))
    if len(y_true) < 2:
        return float("nan")
    resid = np.sum((y_true - y_pred) ** 2)
    total = np.sum((y_true - y_true.mean()) ** 2)
    return float(1.0 - resid / total) if total > 0 else float("nan")


def constant_prediction(kind: str, y_train: np.ndarray, n: int) -> np.ndarray:
    """The readout that ignores the vectors: the most frequent training label (smallest on ties), or
    the training mean."""
    y_train = np.asarray(y_train)
    if kind == CLASSIFY:
        values, counts = np.unique(y_train, return_counts=True)
        return np.full(n, values[np.argmax(counts)])
    return np.full(n, float(np.mean(y_train)))


def stitch(kind: str, data: dict, max_iter: int = MAX_ITER, alphas=ALPHAS) -> list[dict]:
    """Scores of every ordered pair of models in one space.

    ``data`` maps model -> ``Split``. Each model's readout is fit once on its training data. Returns one
    dict per ordered pair (source, target, n_train, n_test, score_transfer, score_transfer_target_scaled,
    score_own, score_baseline, note); source == target gives both transfers == own.
    """
    readouts, own = {}, {}
    for m, d in data.items():
        readouts[m] = fit_readout(kind, d.x_train, d.y_train, max_iter, alphas)
        own[m] = score(kind, d.y_test, readouts[m].predict(np.asarray(d.x_test, dtype=np.float64)))
    rows = []
    for s, ds in data.items():
        for t, dt in data.items():
            base = score(kind, dt.y_test, constant_prediction(kind, ds.y_train, len(dt.y_test)))
            row = dict(
                source=s,
                target=t,
                n_train=len(ds.y_train),
                n_test=len(dt.y_test),
                score_own=own[t],
                score_baseline=base,
                note="",
            )
            if ds.x_train.shape[1] != dt.x_test.shape[1]:
                row["score_transfer"] = row["score_transfer_target_scaled"] = float("nan")
                row["note"] = (
                    f"not computed: widths differ ({ds.x_train.shape[1]} vs {dt.x_test.shape[1]}), "
                    "the source's readout cannot take the target's vectors"
                )
            else:
                x = np.asarray(dt.x_test, dtype=np.float64)
                row["score_transfer"] = score(kind, dt.y_test, readouts[s].predict(x))
                scaled = readouts[t][0].transform(x)  # the target's own standardisation, then A's model
                row["score_transfer_target_scaled"] = score(kind, dt.y_test, readouts[s][-1].predict(scaled))
                if s == t:
                    row["note"] = "own readout"
            rows.append(row)
    return rows
