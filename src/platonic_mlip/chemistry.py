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
