"""Periodic-table helpers for colouring and grouping atoms."""

from __future__ import annotations

#: first atomic number of periods 2..7
_PERIOD_STARTS = (3, 11, 19, 37, 55, 87)


def period_of(z: int) -> int:
    if not 1 <= z <= 118:
        raise ValueError(f"atomic number {z} out of range")
    return 1 + sum(z >= s for s in _PERIOD_STARTS)


def group_of(z: int) -> int | None:
    """IUPAC group 1-18, or None for the lanthanides La-Lu (57-71) and actinides Ac-Lr (89-103)."""
    period = period_of(z)
    if period == 1:
        return 1 if z == 1 else 18
    offset = z - _PERIOD_STARTS[period - 2]
    if period in (2, 3):
        return offset + 1 if offset < 2 else offset + 11
    if period in (4, 5):
        return offset + 1
    if offset < 2:
        return offset + 1
    if offset <= 16:
        return None
    return offset - 13


def group_label(z: int) -> str:
    """'G1'..'G18', or 'Ln/An' for the f-block."""
    g = group_of(z)
    return "Ln/An" if g is None else f"G{g}"


#: chemical families used to colour atoms (ours): 11 classes a colour-blind-safe palette can tell apart,
#: where the 19 groups cannot be; H counts with group 1, He with the noble gases
FAMILY_ORDER = (
    "alkali (G1)",
    "alkaline earth (G2)",
    "early TM (G3-7)",
    "late TM (G8-12)",
    "G13",
    "G14",
    "pnictogens (G15)",
    "chalcogens (G16)",
    "halogens (G17)",
    "noble gases (G18)",
    "Ln/An",
)


def family_label(z: int) -> str:
    """The chemical family (``FAMILY_ORDER``) of atomic number ``z``."""
    g = group_of(z)
    if g is None:
        return "Ln/An"
    if 3 <= g <= 7:
        return "early TM (G3-7)"
    if 8 <= g <= 12:
        return "late TM (G8-12)"
    return {1: FAMILY_ORDER[0], 2: FAMILY_ORDER[1], 13: "G13", 14: "G14"}.get(g) or FAMILY_ORDER[g - 9]
