"""The paper's claims tested on one run's outputs: one row per claim, metric and anchor set, with a verdict.

Li & Walsh (arXiv 2512.05349) state qualitative claims and show single numbers; they give no rule for
when a claim holds. Every rule below (which pairs, which interval, which threshold) is OURS; the
thresholds are the fields of ``ClaimParams``, with documented defaults.

Inputs (tidy tables, as the workflow writes them):

- ``pairwise``: ``metrics/pairwise.csv`` (``metrics.pairwise_table``): model_a, model_b, space
  (``raw`` / ``platonic``, or a space name ending in ``-centred``), anchors (anchor-set name; empty or
  NaN in raw space), metric, value, and with intervals mean, ci_low, ci_high (n_repeats > 0).
- ``sweep``: the per-K tables ``metrics/anchor_sweep/k<K>.csv`` concatenated: k, method (``direct`` /
  ``random``), seed, model_a, model_b, metric, value.
- ``elements``: the element-level Platonic vectors of ``elements/element_embeddings.npz`` as
  {"numbers": (E,) atomic numbers, "counts": (E,) atoms per element, "vectors": {model: (E, K)}}.

Pair classes (OURS): a *control* is an untrained model (``source: random``); a *trained pair* is two
distinct models, neither a control; it is *cross-architecture* when their families differ and
*same-architecture* otherwise; a *trained–control pair* is one trained model and one control.

The number of a group of pairs (OURS): per pair, the metric's mean over the redrawn atom samples
(column ``mean``; ``value`` when the run has no intervals); ``ours`` = the mean of that over the pairs.
Its interval: the mean over the pairs of the pairs' interval bounds (``ci_low``, ``ci_high``). All pairs
share the same redrawn samples, so their sampling errors move together; when they move exactly together
this is the percentile interval of the pair mean, otherwise it is wider (conservative). It covers atom
sampling only: not the choice of pairs, anchors or checkpoints.

"A beyond B" (OURS): the interval of A lies strictly above the interval of B (A.ci_low > B.ci_high).
Without intervals (``metrics.uncertainty.repeats: 0``) the intervals are the points themselves, and the
reason says so.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .chemistry import group_of, period_of
from .metrics import BEYOND_ELEMENT

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
NOT_TESTABLE = "not testable on this run"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE)

#: columns of the claims table, in order
COLUMNS = [
    "claim_id",
    "claim",
    "metric",
    "space",
    "anchors",
    "pairs",
    "n_pairs",
    "ours",
    "ci_low",
    "ci_high",
    "comparison",
    "verdict",
    "reason",
]

#: metrics that raw and Platonic space both have (raw space has no OT term: no OT, no composite)
SHARED_METRICS = ("mknn", "cka", "procrustes_score")
#: similarity scores of the Platonic space, all "higher = more alike" (ot_score = 1 - ot_normalised)
PLATONIC_METRICS = ("mknn", "cka", "procrustes_score", "ot_score", "composite")

CENTRED = "-centred"
NAN = float("nan")

#: the paper's claims (paraphrased from arXiv 2512.05349), and our sub-checks, one sentence each
CLAIMS = {
    "1": (
        "The raw latent spaces of MLIPs of different architectures are mutually incompatible, but their "
        "projections onto shared anchor atoms (the Platonic space) align."
    ),
    "1-same": (
        "Claim 1 within one architecture (not the paper's cross-architecture claim): two trained models "
        "of one family align better in the Platonic space than in their raw spaces."
    ),
    "2": (
        "Trained MLIPs align with one another in the Platonic space, but not with an untrained "
        "(random-weight) model."
    ),
    "2-same": (
        "Claim 2 with the architecture held fixed: two trained models of one family align better than a "
        "trained model with an untrained model of its own family."
    ),
    "3": (
        "Anchors chosen by DIRECT sampling give better cross-model alignment than the same number of "
        "randomly chosen anchors."
    ),
    "3-sweep": (
        "Claim 3 on the K sweep: at the run's K, DIRECT anchors align better than every random-anchor seed."
    ),
    "4": "Cross-model alignment in the Platonic space converges as the number of anchors K grows.",
    "5": (
        "Element-level embeddings (mean Platonic vector per element) of trained models keep the periodic "
        "structure (elements of one group / period are neighbours); an untrained model's do not."
    ),
    "6": (
        "Models whose features are rotation-invariant by construction (equivariant architectures) keep "
        "their embeddings under rigid rotation (Fig. 5g)."
    ),
    "6-orb": (
        "Orb-v3, whose trunk is not equivariant, does not keep its embeddings under rigid rotation (Fig. 5g)."
    ),
    "8-element": (
        "Beyond element identity (not a paper claim): trained models agree with one another more than a "
        "trained model agrees with an element-identity baseline (a fixed vector per element); the "
        "chance-corrected mutual k-NN (mknn_beyond_element, agreement beyond a within-element shuffle) of "
        "trained pairs lies above 0."
    ),
    "8-physics": (
        "Physics grounding (not a paper claim): trained models agree more with physics-constructed reference "
        "spaces (SOAP, atomic states) than with untrained networks."
    ),
    "8-training": (
        "Physical supervision (the paper's causal claim): a network distilled from a pretrained model's "
        "energies and forces aligns with the trained models more than its twin trained on the same "
        "structures without physical labels (denoising), from the same random start."
    ),
    "7": (
        "Equivariant models map symmetry-equivalent atoms (space-group-221 structures) onto one embedding, "
        "and the Platonic projection keeps this (Fig. 5f, two-nearest-neighbour analysis)."
    ),
}


@dataclass(frozen=True)
class ClaimParams:
    """Thresholds of the verdicts. All OURS: the paper states none.

    Attributes
    ----------
    min_pair_share : claims 1 and 3 compare the same pairs in two spaces / anchor sets; besides the
        pair-averaged intervals being separated, at least this share of the pairs must be separated
        on their own intervals (so that one pair cannot carry the mean). Default 0.5.
    convergence_rel_tol, convergence_abs_tol : claim 4; the pair-averaged metric has converged when
        the change between the two largest K of the sweep is at most ``rel_tol`` times its range over
        the whole grid (max - min), or at most ``abs_tol`` in absolute terms (a flat curve). Defaults
        0.1 and 0.005.
    min_sweep_k : claim 4 needs at least this many K values with every trained pair. Default 3.
    n_neighbours : claim 5; the n nearest elements (cosine of the element vectors). Default 3.
    f_block : claim 5 with the group key; ``"exclude"``: the lanthanides La-Lu and actinides Ac-Lr
        (no IUPAC group) are never a query and never a same-group neighbour (they stay candidates);
        ``"class"``: they form one class "Ln/An". Default "exclude".
    min_atoms : claim 5; elements with fewer atoms in the run are left out. Default 1.
    bootstrap, level, seed : claim 5; interval of the purity score from ``bootstrap`` resamples of the
        query elements (with replacement), central ``level`` percentile interval. Defaults 1000, 0.95, 0.
    """

    min_pair_share: float = 0.5
    convergence_rel_tol: float = 0.1
    convergence_abs_tol: float = 0.005
    min_sweep_k: int = 3
    n_neighbours: int = 3
    f_block: str = "exclude"
    min_atoms: int = 1
    bootstrap: int = 1000
    level: float = 0.95
    seed: int = 0


# --------------------------------------------------------------------------------------------------
# Models and pairs
# --------------------------------------------------------------------------------------------------

PAIR_KINDS = {
    "trained": "trained pairs",
    "cross": "cross-architecture trained pairs",
    "same": "same-architecture trained pairs",
    "control": "trained–control pairs",
    "same-control": "same-architecture trained–control pairs",
    "self-supervised": "trained–self-supervised pairs",
    "distilled": "trained–distilled pairs",
    "element": "trained–element-baseline pairs",
    "physics": "trained–physics-reference pairs",
}


def checkpoint_of(model: str) -> str:
    """The checkpoint of a model id: ``7net-0@last`` -> ``7net-0`` (ids are ``name`` or ``name@layer``)."""
    return model.split("@", 1)[0]


@dataclass(frozen=True)
class Roster:
    """The run's models in order, its controls, each model's family and role.

    ``controls``: every model that is not trained; ``roles``: {model: role} (``platonic_mlip.models.ROLES``:
    ``trained``, ``untrained``, ``element``, ``physics``); a control without a role is ``untrained``.
    """

    models: tuple[str, ...]
    controls: frozenset[str]
    families: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def make(
        cls,
        models: Sequence[str],
        controls: Sequence[str],
        families: Mapping[str, str],
        roles: Mapping[str, str] | None = None,
    ) -> Roster:
        """Checked constructor: every control is a model, every model has a family, and a model has the
        role ``trained`` exactly when it is not a control."""
        models = tuple(models)
        unknown = sorted(set(controls) - set(models))
        if unknown:
            raise ValueError(f"controls {unknown} are not among the models {list(models)}")
        missing = [m for m in models if m not in families]
        if missing:
            raise ValueError(f"no family for model(s) {missing}")
        roles = {m: (roles or {}).get(m) or ("untrained" if m in controls else "trained") for m in models}
        wrong = [m for m in models if (roles[m] == "trained") == (m in controls)]
        if wrong:
            raise ValueError(f"model(s) {wrong}: role {[roles[m] for m in wrong]} contradicts --controls")
        return cls(models, frozenset(controls), {m: families[m] for m in models}, roles)

    def role(self, model: str) -> str:
        return self.roles.get(model) or ("untrained" if model in self.controls else "trained")

    @property
    def trained(self) -> list[str]:
        return [m for m in self.models if self.role(m) == "trained"]

    @property
    def untrained(self) -> list[str]:
        return [m for m in self.models if self.role(m) == "untrained"]

    def of_role(self, role: str) -> list[str]:
        return [m for m in self.models if self.role(m) == role]

    def pairs(self, kind: str) -> list[tuple[str, str]]:
        """Unordered pairs of distinct models of one kind (see ``PAIR_KINDS``), in model order.

        ``trained``: both trained; ``cross``: trained, families differ; ``same``: trained, same family;
        ``control``: one trained, one untrained; ``same-control``: one trained, one untrained of its
        family; ``self-supervised`` / ``distilled`` / ``element`` / ``physics``: one trained, one control
        of that role. Two ids of one
        checkpoint at different layers (``name`` and ``name@layer``, see ``checkpoint_of``) are never a pair.
        """
        if kind not in PAIR_KINDS:
            raise ValueError(f"unknown pair kind {kind!r}; one of {list(PAIR_KINDS)}")
        other = {"control": "untrained", "same-control": "untrained"}
        other.update({k: k for k in ("self-supervised", "distilled", "element", "physics")})
        out = []
        for i, a in enumerate(self.models):
            for b in self.models[i + 1 :]:
                if checkpoint_of(a) == checkpoint_of(b):
                    continue  # one checkpoint at two layers: not two models
                ra, rb = self.role(a), self.role(b)
                same = self.families[a] == self.families[b]
                if kind in ("trained", "cross", "same"):
                    ok = ra == rb == "trained" and {"trained": True, "cross": not same, "same": same}[kind]
                else:
                    ok = sorted([ra, rb]) == sorted(["trained", other[kind]]) and (
                        kind != "same-control" or same
                    )
                if ok:
                    out.append((a, b))
        return out

    def families_of_trained(self) -> str:
        """E.g. ``sevenn: 7net-0, 7net-l3i5``."""
        fams: dict[str, list[str]] = {}
        for m in self.trained:
            fams.setdefault(self.families[m], []).append(m)
        return "; ".join(f"{f}: {', '.join(ms)}" for f, ms in fams.items()) or "none"


def describe_pairs(kind: str, pairs: Sequence[tuple[str, str]]) -> str:
    """E.g. ``cross-architecture trained pairs (2): a–b; a–c``."""
    listed = "; ".join(f"{a}–{b}" for a, b in pairs)
    return f"{PAIR_KINDS.get(kind, kind)} ({len(pairs)})" + (f": {listed}" if pairs else "")


# --------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Test:
    """What one block of rows tests: claim, space, anchors and pairs; ``row`` adds the numbers."""

    claim_id: str
    space: str
    anchors: str
    pairs: str
    n_pairs: int

    def row(self, metric, ours=NAN, low=NAN, high=NAN, comparison="", verdict=NOT_TESTABLE, reason=""):
        return dict(
            claim_id=self.claim_id,
            claim=CLAIMS[self.claim_id],
            metric=metric,
            space=self.space,
            anchors=self.anchors,
            pairs=self.pairs,
            n_pairs=self.n_pairs,
            ours=float(ours),
            ci_low=float(low),
            ci_high=float(high),
            comparison=comparison,
            verdict=verdict,
            reason=reason,
        )

    def untestable(self, metrics: Sequence[str], reason: str) -> list[dict]:
        return [self.row(m, reason=reason) for m in metrics]


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _fmt(x) -> str:
    return f"{float(x):.3f}" if _finite(x) else "–"


# --------------------------------------------------------------------------------------------------
# Group statistics of the pairwise table
# --------------------------------------------------------------------------------------------------


def block_name(space: str, anchors) -> str:
    """Name of a block of the pairwise table: ``raw``, or the anchor set (``direct``, ``direct-centred``).

    A centred variant may be written as its own anchor set (``direct-centred``) or as a space ending in
    ``-centred`` with the plain anchor-set name; both give ``<set>-centred``.
    """
    anchors = "" if not isinstance(anchors, str) else anchors
    if space == "raw":
        return "raw"
    if str(space).endswith(CENTRED) and not anchors.endswith(CENTRED):
        return anchors + CENTRED
    return anchors or str(space)


def with_blocks(pairwise):
    """The pairwise table with a ``block`` column (see ``block_name``)."""
    blocks = [block_name(s, a) for s, a in zip(pairwise["space"], pairwise["anchors"], strict=True)]
    return pairwise.assign(block=blocks)


@dataclass
class Group:
    """One metric over a group of pairs in one block: per-pair (P,) points and interval bounds.

    ``has_ci``: every pair had a finite interval; otherwise the bounds are the points.
    """

    pairs: list[tuple[str, str]]
    points: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    has_ci: bool

    @property
    def mean(self) -> float:
        return float(self.points.mean())

    @property
    def low(self) -> float:
        return float(self.lows.mean())

    @property
    def high(self) -> float:
        return float(self.highs.mean())

    def text(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]" if self.has_ci else f"{self.mean:.3f}"


def group_stats(table, block: str, metric: str, pairs: Sequence[tuple[str, str]]) -> Group:
    """The metric of every pair of ``pairs`` in one block of ``table`` (``with_blocks`` applied).

    Per pair: point = ``mean`` (over the redrawn samples) when finite, else ``value``; interval =
    ci_low, ci_high when finite, else the point. Raises KeyError naming the first missing pair.
    """
    sel = table[(table["block"] == block) & (table["metric"] == metric)]
    index = {}
    for r in sel.to_dict("records"):
        index[(r["model_a"], r["model_b"])] = r
        index.setdefault((r["model_b"], r["model_a"]), r)
    points, lows, highs, has_ci = [], [], [], True
    for a, b in pairs:
        r = index.get((a, b))
        if r is None:
            raise KeyError(f"no row for pair {a}–{b}, metric {metric!r}, anchor set {block!r}")
        point = float(r["mean"]) if _finite(r.get("mean")) else float(r["value"])
        lo, hi = r.get("ci_low"), r.get("ci_high")
        has_ci = has_ci and _finite(lo) and _finite(hi)
        points.append(point)
        lows.append(float(lo) if _finite(lo) else point)
        highs.append(float(hi) if _finite(hi) else point)
    if not has_ci:  # all or nothing: without every interval the group's interval is its points
        lows, highs = points, points
    return Group(list(pairs), np.array(points), np.array(lows), np.array(highs), has_ci)


def compare(
    hi: Group, lo: Group, hi_name: str, lo_name: str, matched: bool, min_pair_share: float
) -> tuple[str, str, str]:
    """(comparison, verdict, reason) of the claim "``hi`` beyond ``lo``" (module docstring).

    ``matched``: both groups hold the same pairs (claims 1 and 3); the verdict then also needs at least
    ``min_pair_share`` of the pairs separated on their own intervals.
    """
    comparison = f"{hi_name} {hi.text()} vs {lo_name} {lo.text()}; difference {hi.mean - lo.mean:+.3f}"
    note = "" if hi.has_ci and lo.has_ci else " (no intervals in this run: point values compared)"
    share_txt, share_ok = "", True
    if matched:
        if hi.pairs != lo.pairs:
            raise ValueError("compare(matched=True) needs the same pairs in both groups")
        n_sep, n = int(np.sum(hi.lows > lo.highs)), len(hi.pairs)
        share_ok = n_sep >= min_pair_share * n
        share_txt = f"; {n_sep} of {n} pairs separated on their own intervals"
        comparison += share_txt
    if hi.low > lo.high and share_ok:
        return comparison, SUPPORTED, f"{hi_name} interval lies above the {lo_name} interval{share_txt}{note}"
    if hi.low > lo.high:
        reason = (
            f"pair-averaged intervals separated, but only {n_sep} of {n} pairs on their own (needs at "
            f"least {min_pair_share:.0%}){note}"
        )
    elif lo.low > hi.high:
        reason = f"{hi_name} lies below {lo_name} beyond the intervals{note}"
    else:
        reason = f"the intervals of {hi_name} and {lo_name} overlap{note}"
    return comparison, NOT_SUPPORTED, reason


def _metrics_in(table, block: str, metrics: Sequence[str]) -> list[str]:
    """The metrics of ``metrics`` that ``block`` has (e.g. no composite without composite weights)."""
    have = set(table.loc[table["block"] == block, "metric"])
    return [m for m in metrics if m in have]


# --------------------------------------------------------------------------------------------------
# Claims 1-3 on the pairwise table
# --------------------------------------------------------------------------------------------------


def claim_raw_vs_platonic(
    table, roster: Roster, block: str, kind: str = "cross", params: ClaimParams = ClaimParams()
) -> list[dict]:
    """Claim 1: per metric of ``SHARED_METRICS``, Platonic (``block``) beyond raw, over the same pairs.

    ``kind``: ``cross`` (the paper's claim, claim_id "1") or ``same`` (same-architecture pairs,
    claim_id "1-same": a run without cross-architecture pairs still shows numbers). ``ours`` and its
    interval are the Platonic side. ``table``: the pairwise table with ``with_blocks`` applied.
    """
    pairs = roster.pairs(kind)
    test = _Test(
        "1" if kind == "cross" else "1-same",
        "raw vs Platonic",
        block,
        describe_pairs(kind, pairs),
        len(pairs),
    )
    if not pairs:
        what = "different families" if kind == "cross" else "one family"
        reason = (
            f"no pair of trained models of {what} (trained models by family: {roster.families_of_trained()})"
        )
        return test.untestable(SHARED_METRICS, reason)
    rows = []
    for metric in SHARED_METRICS:
        plat, raw = group_stats(table, block, metric, pairs), group_stats(table, "raw", metric, pairs)
        comparison, verdict, reason = compare(
            plat, raw, f"Platonic ({block})", "raw", True, params.min_pair_share
        )
        rows.append(test.row(metric, plat.mean, plat.low, plat.high, comparison, verdict, reason))
    return rows


def claim_trained_vs_control(
    table, roster: Roster, block: str, same_family: bool = False, params: ClaimParams = ClaimParams()
) -> list[dict]:
    """Claim 2: per metric of ``PLATONIC_METRICS``, trained–trained pairs beyond trained–control pairs.

    ``same_family``: only pairs within one family on both sides (claim_id "2-same": training is then
    the only difference). ``ours`` is the trained–trained side.
    """
    tt_kind, tc_kind = ("same", "same-control") if same_family else ("trained", "control")
    tt, tc = roster.pairs(tt_kind), roster.pairs(tc_kind)
    desc = f"{describe_pairs(tt_kind, tt)} vs {describe_pairs(tc_kind, tc)}"
    test = _Test("2-same" if same_family else "2", "Platonic", block, desc, len(tt))
    if not tt or not tc:
        missing = []
        if not roster.untrained:
            missing.append("the run has no untrained control (a model with source: random)")
        elif not tc:
            missing.append("no untrained control shares a family with a trained model")
        if not tt:
            missing.append(
                f"no {PAIR_KINDS[tt_kind]} (trained models by family: {roster.families_of_trained()})"
            )
        return test.untestable(PLATONIC_METRICS, "; ".join(missing))
    rows = []
    for metric in _metrics_in(table, block, PLATONIC_METRICS):
        g_tt, g_tc = group_stats(table, block, metric, tt), group_stats(table, block, metric, tc)
        comparison, verdict, reason = compare(g_tt, g_tc, "trained–trained", "trained–control", False, 0.0)
        rows.append(test.row(metric, g_tt.mean, g_tt.low, g_tt.high, comparison, verdict, reason))
    return rows


def claim_controls(table, roster: Roster, block: str, params: ClaimParams = ClaimParams()) -> list[dict]:
    """Claims 8-training, 8-element and 8-physics in one anchor set (``block``; ``raw`` for raw space).

    8-training (only when the run has trained controls), per metric: trained–distilled pairs beyond
    trained–self-supervised pairs. 8-element, per metric: trained–trained pairs beyond
    trained–element-baseline pairs; then, when the table has ``BEYOND_ELEMENT``, the trained pairs'
    chance-corrected score must lie above 0. 8-physics, per metric: trained–physics pairs beyond
    trained–untrained pairs. The comparison cell lists every group (trained–trained, –untrained,
    –self-supervised, –distilled, –element, –physics) so the table answers which is closest.
    """
    space = "raw" if block == "raw" else "Platonic"
    anchors = "" if block == "raw" else block
    metrics = _metrics_in(table, block, SHARED_METRICS if block == "raw" else PLATONIC_METRICS)
    kinds = ("trained", "control", "self-supervised", "distilled", "element", "physics")
    groups = {k: roster.pairs(k) for k in kinds}
    names = {"trained": "trained–trained", "control": "trained–untrained"}
    names.update({k: f"trained–{k}" for k in kinds[2:]})

    def listing(metric):
        parts = []
        for k, pairs in groups.items():
            if pairs:
                parts.append(f"{names[k]} {group_stats(table, block, metric, pairs).text()}")
        return "; ".join(parts)

    rows = []
    tests = (
        ("8-training", "distilled", "self-supervised"),
        ("8-element", "trained", "element"),
        ("8-physics", "physics", "control"),
    )
    for claim, hi_kind, lo_kind in tests:
        if claim == "8-training" and not (roster.of_role("distilled") or roster.of_role("self-supervised")):
            continue
        hi, lo = groups[hi_kind], groups[lo_kind]
        desc = f"{describe_pairs(hi_kind, hi)} vs {describe_pairs(lo_kind, lo)}"
        test = _Test(claim, space, anchors, desc, len(hi))
        if not hi or not lo:
            missing = [describe_pairs(k, []) for k, p in ((hi_kind, hi), (lo_kind, lo)) if not p]
            rows += test.untestable(metrics or ["mknn"], "no " + " and no ".join(missing) + " in this run")
            continue
        for metric in metrics:
            g_hi, g_lo = group_stats(table, block, metric, hi), group_stats(table, block, metric, lo)
            comparison, verdict, reason = compare(g_hi, g_lo, names[hi_kind], names[lo_kind], False, 0.0)
            comparison = f"{comparison}. All groups: {listing(metric)}"
            rows.append(test.row(metric, g_hi.mean, g_hi.low, g_hi.high, comparison, verdict, reason))
        if claim == "8-element" and BEYOND_ELEMENT in set(table.loc[table["block"] == block, "metric"]):
            g = group_stats(table, block, BEYOND_ELEMENT, hi)
            above = g.low > 0
            note = "" if g.has_ci else " (no intervals in this run: point value)"
            rows.append(
                test.row(
                    BEYOND_ELEMENT,
                    g.mean,
                    g.low,
                    g.high,
                    f"trained–trained {g.text()} vs 0 (element identity alone). All groups: "
                    f"{listing(BEYOND_ELEMENT)}",
                    SUPPORTED if above else NOT_SUPPORTED,
                    ("interval lies above 0" if above else "interval reaches 0 or below") + note,
                )
            )
    return rows


def claim_direct_vs_random(
    table, roster: Roster, direct: str = "direct", random: str = "random", params: ClaimParams = ClaimParams()
) -> list[dict]:
    """Claim 3: per metric of ``PLATONIC_METRICS``, anchor set ``direct`` beyond ``random``, trained pairs.

    Both sets have the run's K (``anchors.k``). ``ours`` is the DIRECT side. Not testable when either
    set is missing from ``table`` or there are fewer than two trained models.
    """
    pairs = roster.pairs("trained")
    test = _Test("3", "Platonic", f"{direct} vs {random}", describe_pairs("trained", pairs), len(pairs))
    blocks = set(table["block"])
    absent = [s for s in (direct, random) if s not in blocks]
    if absent:
        return test.untestable(
            PLATONIC_METRICS, f"anchor set(s) {', '.join(absent)} not in this run (config key 'anchors.sets')"
        )
    if not pairs:
        return test.untestable(PLATONIC_METRICS, "fewer than two trained models")
    rows = []
    for metric in _metrics_in(table, direct, PLATONIC_METRICS):
        g_d, g_r = group_stats(table, direct, metric, pairs), group_stats(table, random, metric, pairs)
        comparison, verdict, reason = compare(g_d, g_r, direct, random, True, params.min_pair_share)
        rows.append(test.row(metric, g_d.mean, g_d.low, g_d.high, comparison, verdict, reason))
    return rows


# --------------------------------------------------------------------------------------------------
# Claims 3 (sweep) and 4 on the K sweep
# --------------------------------------------------------------------------------------------------


def sweep_curve(sweep, pairs: Sequence[tuple[str, str]], method: str, metric: str):
    """Pair-averaged metric per (K, seed) of one anchor method over ``pairs``.

    ``sweep`` has columns k, method, seed, model_a, model_b, metric, value. Only (K, seed) where every
    pair is present count (like with like). Returns a DataFrame k, seed, value sorted by k, seed.
    """
    import pandas as pd

    want = {frozenset(p) for p in pairs}
    sel = sweep[(sweep["method"] == method) & (sweep["metric"] == metric)]
    keys = [frozenset((a, b)) for a, b in zip(sel["model_a"], sel["model_b"], strict=True)]
    sel = sel[[k in want for k in keys]]
    if sel.empty:
        return pd.DataFrame({"k": [], "seed": [], "value": []})
    grouped = sel.groupby(["k", "seed"]).agg(value=("value", "mean"), n=("value", "size")).reset_index()
    grouped = grouped[grouped["n"] == len(want)]
    return grouped[["k", "seed", "value"]].sort_values(["k", "seed"]).reset_index(drop=True)


def claim_convergence(
    sweep, roster: Roster, method: str = "direct", params: ClaimParams = ClaimParams()
) -> list[dict]:
    """Claim 4: per metric of ``PLATONIC_METRICS``, the DIRECT curve over K of the trained-pair mean m(K).

    With K_1 < ... < K_n the grid (only K where every trained pair has a value): tail = |m(K_n) -
    m(K_{n-1})|, range = max_K m - min_K m. Supported when tail <= ``convergence_rel_tol`` * range or
    tail <= ``convergence_abs_tol``; not testable without a sweep, without two trained models or with
    fewer than ``min_sweep_k`` K. ``ours`` = m(K_n); no interval (the sweep uses one atom sample).
    """
    pairs = roster.pairs("trained")
    test = _Test("4", "Platonic (K sweep)", method, describe_pairs("trained", pairs), len(pairs))
    if sweep is None or len(sweep) == 0:
        return test.untestable(PLATONIC_METRICS, "no K sweep in this run (config key 'anchors.sweep.k')")
    if not pairs:
        return test.untestable(PLATONIC_METRICS, "fewer than two trained models")
    rows = []
    for metric in [m for m in PLATONIC_METRICS if m in set(sweep["metric"])]:
        curve = sweep_curve(sweep, pairs, method, metric).groupby("k", as_index=False)["value"].mean()
        ks, vals = curve["k"].to_numpy(), curve["value"].to_numpy()
        points = ", ".join(f"K={k}: {v:.3f}" for k, v in zip(ks, vals, strict=True))
        if len(ks) < params.min_sweep_k:
            reason = (
                f"{len(ks)} K value(s) with every trained pair, need {params.min_sweep_k} "
                "(config key 'anchors.sweep.k')"
            )
            rows.append(test.row(metric, vals[-1] if len(vals) else NAN, comparison=points, reason=reason))
            continue
        tail, span = abs(vals[-1] - vals[-2]), float(vals.max() - vals.min())
        limit = max(params.convergence_rel_tol * span, params.convergence_abs_tol)
        comparison = (
            f"change K={ks[-2]}→{ks[-1]}: {vals[-1] - vals[-2]:+.4f}; range over K={ks[0]}..{ks[-1]}: "
            f"{span:.4f}; curve {points}"
        )
        ok = bool(tail <= limit)
        reason = (
            f"|change| {tail:.4f} {'≤' if ok else '>'} max({params.convergence_rel_tol:g} × range, "
            f"{params.convergence_abs_tol:g}) = {limit:.4f}: "
            f"{'converged' if ok else 'still moving between the two largest K'}; no interval (one atom "
            "sample per K)"
        )
        rows.append(
            test.row(metric, vals[-1], NAN, NAN, comparison, SUPPORTED if ok else NOT_SUPPORTED, reason)
        )
    return rows


def claim_direct_vs_random_sweep(sweep, roster: Roster, k: int | None) -> list[dict]:
    """Claim 3 on the K sweep at the run's K: DIRECT against every random seed, trained-pair means.

    Supported when the DIRECT pair mean exceeds the pair mean of every random seed at K = ``k``; the
    comparison also counts at how many K of the grid that holds. No interval (one atom sample). Not
    testable without the sweep, without ``k`` in its grid, or without two trained models.
    """
    pairs = roster.pairs("trained")
    test = _Test(
        "3-sweep",
        f"Platonic (K sweep, K={k})",
        "direct vs random seeds",
        describe_pairs("trained", pairs),
        len(pairs),
    )
    if sweep is None or len(sweep) == 0:
        return test.untestable(PLATONIC_METRICS, "no K sweep in this run (config key 'anchors.sweep.k')")
    if not pairs:
        return test.untestable(PLATONIC_METRICS, "fewer than two trained models")
    rows = []
    for metric in [m for m in PLATONIC_METRICS if m in set(sweep["metric"])]:
        d = sweep_curve(sweep, pairs, "direct", metric).groupby("k")["value"].mean()
        r = sweep_curve(sweep, pairs, "random", metric)
        r_max = r.groupby("k")["value"].max()
        common = [kk for kk in d.index if kk in r_max.index]
        wins = sum(bool(d[kk] > r_max[kk]) for kk in common)
        overall = f"DIRECT above every random seed at {wins} of {len(common)} K of the grid"
        if k is None or k not in common:
            reason = f"the run's K={k} is not in the sweep grid (config key 'anchors.sweep.k')"
            rows.append(test.row(metric, comparison=overall, reason=reason))
            continue
        seeds = r[r["k"] == k]
        per_seed = ", ".join(
            f"seed {int(s)} {v:.3f}" for s, v in zip(seeds["seed"], seeds["value"], strict=True)
        )
        ok = bool(d[k] > r_max[k])
        reason = (
            f"DIRECT {'above' if ok else 'not above'} the best random seed ({r_max[k]:.3f}) at K={k}; "
            "no interval (one atom sample per K)"
        )
        comparison = f"DIRECT {d[k]:.3f} vs random {per_seed}; {overall}"
        rows.append(test.row(metric, d[k], NAN, NAN, comparison, SUPPORTED if ok else NOT_SUPPORTED, reason))
    return rows


# --------------------------------------------------------------------------------------------------
# Claim 5: periodic structure of the element-level embeddings
# --------------------------------------------------------------------------------------------------


def periodic_labels(numbers: Sequence[int], key: str = "group", f_block: str = "exclude") -> list:
    """Class of each atomic number: IUPAC group (1-18) or period (1-7).

    With ``key="group"`` the f-block (La-Lu, Ac-Lr) is None (``f_block="exclude"``) or ``"Ln/An"``
    (``f_block="class"``). None = no class: never a query, never a match.
    """
    if key == "period":
        return [period_of(int(z)) for z in numbers]
    if key != "group":
        raise ValueError(f"periodic_labels: key must be 'group' or 'period', got {key!r}")
    if f_block not in ("exclude", "class"):
        raise ValueError(f"periodic_labels: f_block must be 'exclude' or 'class', got {f_block!r}")
    labels = [group_of(int(z)) for z in numbers]
    return [g if g is not None else (None if f_block == "exclude" else "Ln/An") for g in labels]


def nearest_elements(vectors: np.ndarray, n: int) -> np.ndarray:
    """(E, n) indices of each row's n most cosine-similar other rows (ties: lower index first)."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or not 1 <= n < x.shape[0]:
        raise ValueError(f"nearest_elements: need (E, K) vectors with E > n={n}, got shape {x.shape}")
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :n]


def neighbourhood_purity(vectors: np.ndarray, labels: Sequence, n: int = 3) -> dict:
    """Chance-corrected share of same-class elements among each element's ``n`` nearest (OURS).

    Parameters
    ----------
    vectors : (E, K) element vectors (e.g. the mean Platonic vector per element).
    labels : (E,) class of each element (group or period; None = no class, see ``periodic_labels``).
    n : neighbours per element (cosine similarity, self excluded).

    Definition: the queries are the elements whose class has another member among the E. For query i
    of class c: observed o_i = |{j in N_n(i): label_j = c}| / n; chance e_i = (E_c - 1) / (E - 1), the
    expected share when the n neighbours are drawn at random from the other E - 1 elements.
    O = mean o_i, C = mean e_i, score = (O - C) / (1 - C): 1 = all neighbours in the same class,
    0 = chance level, < 0 = fewer than chance.

    Returns
    -------
    dict: observed (O), chance (C), score, n_queries, n_elements, and per query (Q,) arrays ``query``
    (element indices), ``hits`` (o_i) and ``expected`` (e_i).
    """
    labels = list(labels)
    x = np.asarray(vectors)
    if x.ndim != 2 or len(labels) != x.shape[0]:
        raise ValueError(f"neighbourhood_purity: vectors of shape {x.shape} but {len(labels)} labels")
    sizes: dict = {}
    for lab in labels:
        if lab is not None:
            sizes[lab] = sizes.get(lab, 0) + 1
    query = np.array(
        [i for i, lab in enumerate(labels) if lab is not None and sizes[lab] > 1], dtype=np.int64
    )
    if query.size == 0:
        raise ValueError("neighbourhood_purity: no class has two elements")
    nn = nearest_elements(x, n)
    hits = np.array([np.mean([labels[j] == labels[i] for j in nn[i]]) for i in query])
    expected = np.array([(sizes[labels[i]] - 1) / (len(labels) - 1) for i in query])
    out = _purity(hits, expected)
    out.update(n_queries=int(query.size), n_elements=len(labels), query=query, hits=hits, expected=expected)
    return out


def _purity(hits: np.ndarray, expected: np.ndarray) -> dict:
    observed, chance = float(hits.mean()), float(expected.mean())
    score = (observed - chance) / (1.0 - chance) if chance < 1.0 else NAN
    return {"observed": observed, "chance": chance, "score": score}


def purity_interval(
    purity: dict, bootstrap: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of ``neighbourhood_purity``'s score over resampled query elements (OURS).

    Resamples the queries with replacement (their neighbourhoods fixed) ``bootstrap`` times; returns
    (low, high), or (nan, nan) when ``bootstrap`` is 0.
    """
    if bootstrap <= 0:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    hits, expected = purity["hits"], purity["expected"]
    idx = rng.integers(0, len(hits), size=(bootstrap, len(hits)))
    o, c = hits[idx].mean(axis=1), expected[idx].mean(axis=1)
    scores = (o - c) / np.where(c < 1.0, 1.0 - c, np.nan)
    lo, hi = np.nanquantile(scores, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def element_purity_table(elements: Mapping, roster: Roster, params: ClaimParams = ClaimParams()):
    """Purity per model and key: DataFrame model, control (not trained), role, key (group / period),
    observed, chance, score, ci_low, ci_high, n_queries, n_elements.

    ``elements``: {"numbers": (E,), "counts": (E,) or None, "vectors": {model: (E, K)}}; elements with
    fewer than ``params.min_atoms`` atoms are left out.
    """
    import pandas as pd

    numbers = np.asarray(elements["numbers"])
    counts = elements.get("counts")
    keep = np.ones(len(numbers), dtype=bool) if counts is None else np.asarray(counts) >= params.min_atoms
    labels = {key: periodic_labels(numbers[keep], key, params.f_block) for key in ("group", "period")}
    rows = []
    for model in roster.models:
        if model not in elements["vectors"]:
            raise KeyError(f"no element vectors for model {model!r}")
        vec = np.asarray(elements["vectors"][model])[keep]
        for key, labs in labels.items():
            p = neighbourhood_purity(vec, labs, params.n_neighbours)
            lo, hi = purity_interval(p, params.bootstrap, params.level, params.seed)
            rows.append(
                dict(
                    model=model,
                    control=roster.role(model) != "trained",
                    role=roster.role(model),
                    key=key,
                    observed=p["observed"],
                    chance=p["chance"],
                    score=p["score"],
                    ci_low=lo,
                    ci_high=hi,
                    n_queries=p["n_queries"],
                    n_elements=p["n_elements"],
                )
            )
    return pd.DataFrame(rows)


def claim_element_purity(
    elements, roster: Roster, anchors: str, params: ClaimParams = ClaimParams()
) -> list[dict]:
    """Claim 5: per key (group, period), the trained models' purity score beyond chance and the controls.

    ``ours`` = mean over the trained models of their score; interval = mean of their bootstrap bounds.
    Supported when that interval lies above 0 (chance) and, when the run has controls, above the
    controls' interval (mean of their bounds). One row per key; ``metric`` names the score.
    """
    trained, controls = roster.trained, roster.untrained
    desc = f"trained models ({len(trained)}): {', '.join(trained)}"
    if controls:
        desc += f" vs untrained controls ({len(controls)}): {', '.join(controls)}"
    test = _Test("5", "Platonic (element means)", anchors, desc, len(trained))
    metrics = {k: f"{k}_purity@{params.n_neighbours}" for k in ("group", "period")}
    if elements is None:
        return test.untestable(list(metrics.values()), "no element embeddings in this run")
    if not trained:
        return test.untestable(list(metrics.values()), "no trained model in this run")
    table = element_purity_table(elements, roster, params)
    rows = []
    for key, metric in metrics.items():
        t = table[table["key"] == key]
        tr, ct = t[t["role"] == "trained"], t[t["role"] == "untrained"]
        ours, lo, hi = tr["score"].mean(), tr["ci_low"].mean(), tr["ci_high"].mean()
        lo_v = lo if _finite(lo) else ours
        parts = [f"trained {_fmt(ours)} [{_fmt(lo)}, {_fmt(hi)}] vs chance 0"]
        ok = bool(lo_v > 0.0)
        why = ["above chance" if ok else "not above chance beyond the interval"]
        if len(ct):
            c_mean, c_lo, c_hi = ct["score"].mean(), ct["ci_low"].mean(), ct["ci_high"].mean()
            parts.append(f"untrained controls {_fmt(c_mean)} [{_fmt(c_lo)}, {_fmt(c_hi)}]")
            above = bool(lo_v > (c_hi if _finite(c_hi) else c_mean))
            ok = ok and above
            why.append("above the controls" if above else "not above the controls beyond the intervals")
        else:
            why.append("no untrained control in this run to contrast")
        per_model = "; ".join(
            f"{r['model']} {r['score']:.3f} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            f" (observed {r['observed']:.3f}, chance {r['chance']:.3f})"
            for r in t.to_dict("records")
        )
        comparison = "; ".join(parts) + f". Per model: {per_model}"
        n_el, n_q = int(t["n_elements"].iloc[0]), int(t["n_queries"].iloc[0])
        reason = (
            f"{', '.join(why)}; {n_el} elements, {n_q} with another element of their {key}; score = "
            f"(observed - chance) / (1 - chance) of the share of same-{key} elements among the "
            f"{params.n_neighbours} nearest"
        )
        rows.append(test.row(metric, ours, lo, hi, comparison, SUPPORTED if ok else NOT_SUPPORTED, reason))
    return rows


# --------------------------------------------------------------------------------------------------
# Diagnostics: rotation (Fig. 5g) and symmetry-equivalent atoms (Fig. 5f)
# --------------------------------------------------------------------------------------------------


def invariant_by_construction(model: str, roster: Roster) -> bool:
    """Whether a model's family gives rotation-invariant features by construction (family registry)."""
    from .families import FAMILIES

    return bool(FAMILIES.get(roster.families[model], {}).get("invariant", False))


def _sci(x) -> str:
    return f"{x:.1e}" if _finite(x) else "n/a"


def _per_model(values: Mapping[str, float], fmt=_fmt) -> str:
    return "; ".join(f"{m} {fmt(v)}" for m, v in values.items()) or "none"


def claim_rotation(rotation, roster: Roster, primary: str) -> list[dict]:
    """Claims 6 and 6-orb from ``diagnostics/fig5g_rotational_sensitivity_summary.csv``.

    ``rotation``: DataFrame with model, space, parent_set, max_max_rel_dev, invariant (a model/space is
    invariant when no atom moved more than the noise tolerance; see ``platonic_mlip.rotation``). Per space
    (raw, ``primary``): ``ours`` = the largest move (relative to the space's scale) over the models tested
    and every parent set. 6: the trained models of families invariant by construction (family registry
    ``invariant``) must all be invariant; 6-orb: the trained models of the other families must all move
    beyond the tolerance. Untrained models are reported beside them, never counted.
    """
    rows = []
    for claim, want in (("6", True), ("6-orb", False)):
        for space in ("raw", primary):
            pool = [m for m in roster.models if invariant_by_construction(m, roster) == want]
            trained = [m for m in pool if m in roster.trained]
            untrained = [m for m in pool if m in roster.untrained]
            kind = "invariant by construction" if want else "without built-in invariance"
            desc = f"trained models {kind} ({len(trained)}): {', '.join(trained) or 'none'}"
            test = _Test(
                claim,
                "raw" if space == "raw" else "Platonic",
                "" if space == "raw" else space,
                desc,
                len(trained),
            )
            metric = "largest move under rotation / scale"
            if rotation is None:
                rows.append(test.row(metric, reason="no rotation diagnostic in this run"))
                continue
            t = rotation[rotation["space"] == space]
            worst = t.groupby("model")["max_max_rel_dev"].max()
            inv = t.groupby("model")["invariant"].all()
            untrained_note = (
                f"untrained ({len(untrained)}): {_per_model({m: worst.get(m, NAN) for m in untrained}, _sci)}"
                if untrained
                else ""
            )
            tested = [m for m in trained if m in worst.index and _finite(worst[m])]
            if not tested:
                reason = f"no trained model of a family {kind} in this run"
                if untrained_note:
                    reason += f"; {untrained_note}"
                rows.append(test.row(metric, reason=reason))
                continue
            ours = float(worst[tested].max()) if want else float(worst[tested].min())
            ok = all(bool(inv[m]) == want for m in tested)
            comparison = f"trained: {_per_model({m: worst[m] for m in tested}, _sci)}"
            if untrained_note:
                comparison += f"; {untrained_note}"
            if want:
                reason = (
                    "every one stays within the noise tolerance" if ok else "some move beyond the tolerance"
                )
            else:
                reason = (
                    "every one moves beyond the noise tolerance" if ok else "some stay within the tolerance"
                )
            rows.append(
                test.row(
                    metric,
                    ours,
                    comparison=comparison,
                    verdict=SUPPORTED if ok else NOT_SUPPORTED,
                    reason=reason,
                )
            )
    return rows


def claim_symmetry(symmetry, roster: Roster, primary: str) -> list[dict]:
    """Claim 7 from ``diagnostics/fig5f_equivariant_fraction.csv`` (subset, model, space,
    n_equivalent_pairs, equivariant_fraction): on the first subset that is not ``all`` (the configured
    space groups), ``ours`` = the smallest equivariant fraction over the trained models invariant by
    construction, in raw space and in ``primary``. Supported when it is 1 in both (every
    symmetry-equivalent pair coincides); the other models and the ``all`` subset are reported beside it.
    """
    trained = [m for m in roster.trained if invariant_by_construction(m, roster)]
    desc = f"trained models invariant by construction ({len(trained)}): {', '.join(trained) or 'none'}"
    rows = []
    for space in ("raw", primary):
        test = _Test(
            "7", "raw" if space == "raw" else "Platonic", "" if space == "raw" else space, desc, len(trained)
        )
        metric = "equivariant fraction (symmetry-equivalent pairs that coincide)"
        if symmetry is None:
            rows.append(test.row(metric, reason="no symmetry diagnostic in this run"))
            continue
        subsets = [x for x in dict.fromkeys(symmetry["subset"]) if x != "all"]
        t = symmetry[(symmetry["space"] == space) & symmetry["subset"].isin(subsets[:1])]
        t = t[t["n_equivalent_pairs"] > 0]
        frac = dict(zip(t["model"], t["equivariant_fraction"], strict=True))
        tested = [m for m in trained if m in frac and _finite(frac[m])]
        if not tested:
            where = subsets[0] if subsets else "the configured space groups"
            reason = (
                f"no symmetry-equivalent pairs in {where}"
                if trained
                else "no trained model invariant by construction"
            )
            rows.append(test.row(metric, reason=reason))
            continue
        ours = float(min(frac[m] for m in tested))
        ok = ours >= 1.0 - 1e-12
        others = {m: v for m, v in frac.items() if m not in tested}
        every = symmetry[(symmetry["space"] == space) & (symmetry["subset"] == "all")]
        every = dict(zip(every["model"], every["equivariant_fraction"], strict=True))
        comparison = (
            f"{subsets[0]} ({int(t['n_equivalent_pairs'].iloc[0])} pairs): "
            f"{_per_model({m: frac[m] for m in tested})}"
            f"; other models: {_per_model(others)}"
        )
        if every:
            comparison += f"; every structure: {_per_model(every)}"
        reason = "every pair coincides in every such model" if ok else "some pairs do not coincide"
        rows.append(
            test.row(
                metric, ours, comparison=comparison, verdict=SUPPORTED if ok else NOT_SUPPORTED, reason=reason
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------------


def centred(name: str) -> str:
    """The centred variant's name of an anchor set."""
    return name if name.endswith(CENTRED) else name + CENTRED


def claims_table(
    pairwise,
    roster: Roster,
    primary: str,
    sweep=None,
    elements: Mapping | None = None,
    run_k: int | None = None,
    direct: str = "direct",
    random: str = "random",
    params: ClaimParams = ClaimParams(),
    rotation=None,
    symmetry=None,
):
    """The claims table: one row per claim, metric and anchor set (columns ``COLUMNS``).

    Parameters
    ----------
    pairwise : ``metrics/pairwise.csv`` as a DataFrame.
    roster : the run's models, controls and families.
    primary : the primary anchor set (the run's first, e.g. ``direct``). Claims 1 and 2 use it;
        claim 1 also its centred variant ``<primary>-centred`` when the table has one.
    sweep : the concatenated per-K sweep tables, or None when the run has no sweep.
    elements : the element vectors (see ``element_purity_table``), or None.
    run_k : the run's number of anchors (``anchors.k``), for claim 3 on the sweep.
    direct, random : the anchor sets claim 3 compares (also as ``<name>-centred`` when present).
    rotation, symmetry : the diagnostics' tables (``claim_rotation``, ``claim_symmetry``), or None; claims
        6 and 7 are left out when both are None (a run without diagnostics).

    Rows, in order: 1 and 1-same per Platonic set, 2, 2-same, 8-training, 8-element and 8-physics (raw,
    then the primary set; only when the run has trained controls, element baselines or physics
    references), 3 (and 3 centred),
    3-sweep, 4, 5, 6, 6-orb, 7.
    """
    import pandas as pd

    table = with_blocks(pairwise)
    blocks = set(table["block"])
    if "raw" not in blocks:
        raise KeyError("the pairwise table has no raw-space rows")
    if primary not in blocks:
        raise KeyError(
            f"anchor set {primary!r} not in the pairwise table (it has {sorted(blocks - {'raw'})})"
        )
    rows = []
    for s in [primary] + ([centred(primary)] if centred(primary) in blocks else []):
        rows += claim_raw_vs_platonic(table, roster, s, "cross", params)
        rows += claim_raw_vs_platonic(table, roster, s, "same", params)
    rows += claim_trained_vs_control(table, roster, primary, False, params)
    rows += claim_trained_vs_control(table, roster, primary, True, params)
    if any(roster.of_role(r) for r in ("self-supervised", "distilled", "element", "physics")):
        for block in ("raw", primary):
            rows += claim_controls(table, roster, block, params)
    rows += claim_direct_vs_random(table, roster, direct, random, params)
    if centred(direct) in blocks or centred(random) in blocks:
        rows += claim_direct_vs_random(table, roster, centred(direct), centred(random), params)
    rows += claim_direct_vs_random_sweep(sweep, roster, run_k)
    rows += claim_convergence(sweep, roster, direct, params)
    rows += claim_element_purity(elements, roster, primary, params)
    if rotation is not None or symmetry is not None:
        rows += claim_rotation(rotation, roster, primary)
        rows += claim_symmetry(symmetry, roster, primary)
    return pd.DataFrame(rows, columns=COLUMNS)


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 3px 7px; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.small { font-size: 11px; color: #333; max-width: 36em; }
tr.supported td.verdict { background: #d9f2d9; }
tr.not-supported td.verdict { background: #f8d7d7; }
tr.not-testable td.verdict { background: #eee; color: #555; }
p.note { color: #444; max-width: 70em; }
"""


def render_html(claims, title: str = "The paper's claims tested on this run", note: str = "") -> str:
    """A standalone HTML page of the claims table (verdicts coloured); ``note`` is escaped text."""
    counts = claims["verdict"].value_counts()
    summary = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
    head = ["claim", "statement", "metric", "space", "anchors", "pairs", "ours [interval]"]
    head += ["comparison", "verdict", "reason"]
    out = [
        "<!DOCTYPE html>",
        f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h2>{html.escape(title)}</h2>",
        f'<p class="note">Rows: {html.escape(summary)}. {html.escape(note)}</p>',
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>",
    ]
    last = None
    for r in claims.to_dict("records"):
        cls = {SUPPORTED: "supported", NOT_SUPPORTED: "not-supported"}.get(r["verdict"], "not-testable")
        statement = html.escape(r["claim"]) if r["claim_id"] != last else "〃"
        last = r["claim_id"]
        ours = _fmt(r["ours"])
        if _finite(r["ci_low"]) and _finite(r["ci_high"]):
            ours += f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        cells = [
            f"<td>{html.escape(str(r['claim_id']))}</td>",
            f'<td class="small">{statement}</td>',
            f"<td>{html.escape(str(r['metric']))}</td>",
            f"<td>{html.escape(str(r['space']))}</td>",
            f"<td>{html.escape(str(r['anchors']))}</td>",
            f'<td class="small">{html.escape(str(r["pairs"]))}</td>',
            f'<td class="num">{ours}</td>',
            f'<td class="small">{html.escape(str(r["comparison"]))}</td>',
            f'<td class="verdict">{html.escape(str(r["verdict"]))}</td>',
            f'<td class="small">{html.escape(str(r["reason"]))}</td>',
        ]
        out.append(f'<tr class="{cls}">{"".join(cells)}</tr>')
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"
