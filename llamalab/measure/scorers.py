"""Scorers: is one reply right? Each takes (reply, expected) and returns a score in [0, 1].

Small named things a learner can read: `exact`, `contains`, `regex`, `valid_json`, `number`, the
bundled dataset's `house_format` (and `house_answer`), or any Python function
`(reply, expected) -> bool | float`. `scorer("contains")` or `scorer(Contains(case=True))` or
`scorer(my_function)` gives the one `evaluate()` uses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..core.errors import InvalidSetting

# --------------------------------------------------------------------------- text helpers


def normalize(text: str, case: bool = False) -> str:
    """Strip, collapse runs of whitespace to one space, and casefold unless `case`."""
    out = " ".join(str(text).split())
    return out if case else out.casefold()


class Scorer:
    """What every scorer has: a `name`, `needs_expected` (False: the data needs no "expected"),
    `check(expected)` (raise ValueError on an expected value it cannot use, before anything is
    generated) and `gives_up(partial)` (True once a reply's beginning can no longer score: the
    generation stops early)."""

    name: ClassVar[str] = ""
    needs_expected: ClassVar[bool] = True

    def __call__(self, reply: str, expected) -> float | bool:
        raise NotImplementedError

    def check(self, expected) -> None:
        if not isinstance(expected, str):
            raise ValueError(f"expected {expected!r} is not text")

    def gives_up(self, partial: str) -> bool:
        return False


@dataclass(frozen=True)
class Exact(Scorer):
    """1 when the reply is the expected text, both normalized (stripped, whitespace collapsed,
    casefolded unless `case`)."""

    case: bool = False
    name: ClassVar[str] = "exact"

    def __call__(self, reply: str, expected: str) -> bool:
        return normalize(reply, self.case) == normalize(expected, self.case)


@dataclass(frozen=True)
class Contains(Scorer):
    """1 when the normalized expected text occurs in the normalized reply."""

    case: bool = False
    name: ClassVar[str] = "contains"

    def __call__(self, reply: str, expected: str) -> bool:
        return normalize(expected, self.case) in normalize(reply, self.case)


@dataclass(frozen=True)
class Regex(Scorer):
    """1 when the regular expression matches somewhere in the reply: `pattern` if given, else each
    row's expected text is the pattern. `ignore_case` adds re.IGNORECASE."""

    pattern: str | None = None
    ignore_case: bool = False
    name: ClassVar[str] = "regex"

    def __post_init__(self):
        if self.pattern is not None:
            _compile(self.pattern, self.ignore_case)

    @property
    def needs_expected(self) -> bool:  # type: ignore[override]
        return self.pattern is None

    def __call__(self, reply: str, expected) -> bool:
        pattern = self.pattern if self.pattern is not None else expected
        return _compile(pattern, self.ignore_case).search(reply) is not None

    def check(self, expected) -> None:
        if self.pattern is None:
            super().check(expected)
            _compile(expected, self.ignore_case)


def _compile(pattern: str, ignore_case: bool) -> re.Pattern:
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as e:
        raise InvalidSetting(
            f"{pattern!r} is not a regular expression: {e}.",
            "Fix the pattern (Python's re syntax; escape . ( ) [ ] ? * + with a backslash).",
        ) from None


FENCE = re.compile(r"^```[a-zA-Z]*\n(?P<body>.*)\n```$", re.DOTALL)


@dataclass(frozen=True)
class ValidJson(Scorer):
    """1 when the reply (a surrounding ``` fence allowed) parses as JSON, and when `keys` are given,
    is an object holding all of them. Expected values are not needed."""

    keys: tuple[str, ...] = ()
    name: ClassVar[str] = "valid_json"
    needs_expected: ClassVar[bool] = False

    def __call__(self, reply: str, expected=None) -> bool:
        text = reply.strip()
        fenced = FENCE.match(text)
        try:
            value = json.loads(fenced["body"] if fenced else text)
        except ValueError:
            return False
        if not self.keys:
            return True
        return isinstance(value, dict) and all(k in value for k in self.keys)

    def check(self, expected) -> None:
        return None


NUMBER = re.compile(r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+")


def numbers(text: str) -> list[float]:
    """The numbers written in `text`, in order (thousands commas and a Unicode minus allowed)."""
    return [float(m.replace(",", "").replace("−", "-")) for m in NUMBER.findall(text)]


@dataclass(frozen=True)
class Number(Scorer):
    """1 when the reply's `which` ("last" or "first") number is the expected number within
    `abs_tol` or `rel_tol` (math.isclose); 0 when the reply holds no number."""

    abs_tol: float = 0.0
    rel_tol: float = 1e-9
    which: str = "last"
    name: ClassVar[str] = "number"

    def __post_init__(self):
        if self.which not in ("first", "last"):
            raise InvalidSetting(f"which={self.which!r}.", 'Pass which="last" or which="first".')
        if self.abs_tol < 0 or self.rel_tol < 0:
            raise InvalidSetting("A tolerance is negative.", "Pass abs_tol and rel_tol ≥ 0.")

    def __call__(self, reply: str, expected) -> bool:
        found = numbers(reply)
        if not found:
            return False
        got = found[-1] if self.which == "last" else found[0]
        return math.isclose(got, _number(expected), rel_tol=self.rel_tol, abs_tol=self.abs_tol)

    def check(self, expected) -> None:
        _number(expected)


def _number(expected) -> float:
    if isinstance(expected, bool):
        raise ValueError(f"expected {expected!r} is not a number")
    if isinstance(expected, (int, float)):
        return float(expected)
    found = numbers(str(expected))
    if len(found) != 1:
        raise ValueError(f"expected {expected!r} is not one number")
    return found[0]


# --------------------------------------------------------------------------- the house format

TOPICS = ("geography", "arithmetic", "language", "grammar", "colours", "animals")
FORMAT = re.compile(r"^ANSWER: (?P<answer>[^\n]+)\nTOPIC: (?P<topic>[a-z]+)$")


def complies(reply: str) -> bool:
    """True when the whole reply (stripped) is exactly the two house-format lines with a known
    topic: `ANSWER: <a few words>` then `TOPIC: <one of TOPICS>`."""
    m = FORMAT.match(reply.strip())
    return bool(m) and m["topic"] in TOPICS


def answer_of(reply: str) -> str | None:
    m = FORMAT.match(reply.strip())
    return m["answer"].strip() if m else None


def could_comply(text: str) -> bool:
    """False once `text` (a reply's beginning) can no longer become a house-format reply."""
    t = text.lstrip()
    head = "ANSWER: "
    if not (t.startswith(head) or head.startswith(t)):
        return False
    return t.count("\n") <= 1 or not t.rstrip().count("\n") > 1


@dataclass(frozen=True)
class HouseFormat(Scorer):
    """1 when the reply is in the bundled dataset's house format (see `complies`); the expected
    reply is not needed. Generation stops as soon as a reply can no longer comply."""

    name: ClassVar[str] = "house_format"
    needs_expected: ClassVar[bool] = False

    def __call__(self, reply: str, expected=None) -> bool:
        return complies(reply)

    def check(self, expected) -> None:
        return None

    def gives_up(self, partial: str) -> bool:
        return not could_comply(partial)


@dataclass(frozen=True)
class HouseAnswer(Scorer):
    """1 when the reply is in the house format and its ANSWER is the expected reply's
    (case-insensitive)."""

    name: ClassVar[str] = "house_answer"

    def __call__(self, reply: str, expected: str) -> bool:
        got, want = answer_of(reply), answer_of(expected)
        return complies(reply) and got is not None and got.lower() == (want or "").lower()

    def gives_up(self, partial: str) -> bool:
        return not could_comply(partial)


# --------------------------------------------------------------------------- any function


@dataclass(frozen=True)
class Function(Scorer):
    """A learner's own `fn(reply, expected) -> bool | float in [0, 1]`, named after it."""

    fn: Callable

    @property
    def name(self) -> str:  # type: ignore[override]
        return getattr(self.fn, "name", None) or getattr(self.fn, "__name__", "function")

    def __call__(self, reply: str, expected) -> float | bool:
        return self.fn(reply, expected)

    def check(self, expected) -> None:
        return None


SCORERS: dict[str, type[Scorer]] = {
    s.name: s for s in (Exact, Contains, Regex, ValidJson, Number, HouseFormat, HouseAnswer)
}


def scorer(spec) -> Scorer:
    """The Scorer for a name ("contains"), a Scorer (as is) or a function (wrapped)."""
    if isinstance(spec, Scorer):
        return spec
    if isinstance(spec, str):
        if spec not in SCORERS:
            import difflib

            close = difflib.get_close_matches(spec, SCORERS, n=2)
            hint = f"Did you mean {', '.join(close)}? " if close else ""
            raise InvalidSetting(
                f"Unknown scorer {spec!r}.",
                f"{hint}Known: {', '.join(SCORERS)}; or pass a function (reply, expected) -> "
                "bool | float in [0, 1].",
            )
        return SCORERS[spec]()
    if callable(spec):
        return Function(spec)
    raise InvalidSetting(
        f"scorer={spec!r} is not a scorer.",
        f"Pass a name ({', '.join(SCORERS)}), a scorer such as "
        "llamalab.scorers.Number(abs_tol=0.5), or a function (reply, expected) -> bool | float "
        "in [0, 1].",
    )


def as_score(value, row: int, name: str) -> float:
    """A scorer's result as a float in [0, 1]; anything else is the scorer's bug, named."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):  # a numpy scalar
        value = value.item()
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and 0.0 <= value <= 1.0:
        return float(value)
    raise InvalidSetting(
        f"The scorer {name!r} returned {value!r} for row {row}.",
        "A scorer returns True/False or a number from 0 to 1 (1 = right).",
    )
