"""Checks for arguments at public boundaries: a wrong value raises InvalidSetting naming the
argument, the value and what is allowed, before it reaches transformers, jinja or llama.cpp."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

from .errors import InvalidSetting


def integer(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """An int (bool refused) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidSetting(
            f"{name}={value!r} is not a whole number.", f"Pass an int{_range(lo, hi)}."
        )
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidSetting(f"{name}={value} is out of range.", f"Pass an int{_range(lo, hi)}.")
    return value


def number(name: str, value, lo: float | None = None, hi: float | None = None) -> float:
    """A finite real (bool refused) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise InvalidSetting(
            f"{name}={value!r} is not a finite number.", f"Pass a number{_range(lo, hi)}."
        )
    value = float(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidSetting(f"{name}={value} is out of range.", f"Pass a number{_range(lo, hi)}.")
    return value


def text(name: str, value, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidSetting(
            f"{name} must be a string, not {type(value).__name__}.", f"Pass {name} as text."
        )
    if not empty and not value.strip():
        raise InvalidSetting(f"{name} is empty.", f"Pass a non-empty {name}.")
    return value


def choice(name: str, value, allowed: Iterable) -> object:
    allowed = list(allowed)
    if value not in allowed:
        raise InvalidSetting(
            f"{name}={value!r} is not one of the allowed values.",
            f"Use one of: {', '.join(map(repr, allowed))}.",
        )
    return value


def flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise InvalidSetting(
            f"{name}={value!r} is not True or False.", f"Pass {name}=True or {name}=False."
        )
    return value


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    if lo is not None:
        return f" ≥ {lo}"
    if hi is not None:
        return f" ≤ {hi}"
    return ""
