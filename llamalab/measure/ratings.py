"""Ratings from pairwise votes, as Chatbot Arena computes them (Chiang et al. 2024, "Chatbot Arena",
arXiv:2403.04132; lm-sys/FastChat fastchat/serve/monitor/rating_systems.py): Bradley–Terry scores
by maximum likelihood with percentile-bootstrap intervals, and online Elo beside them.

A vote is a record `{"a": name, "b": name, "winner": "a" | "b" | "tie", ...}`. A tie counts as half
a win and half a loss (FastChat's convention, not Davidson's tie parameter). Scores are on the Elo
scale: 400·log10 of the odds, averaging 1000 over the contenders, so 100 points apart means the
higher one wins 64 % of its votes. Pure numpy: no torch, no processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..core import validate
from ..core.errors import InvalidSetting, LlamalabError
from .confidence import Interval

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

WINNERS = ("a", "b", "tie")
SCALE, BASE, INITIAL = 400.0, 10.0, 1000.0  # Elo's scale, base and starting rating (FastChat's)
ELO_K = 4.0  # FastChat compute_elo's K: each vote moves the two ratings by at most 4 points
RESAMPLES = 1000
MIN_VOTES = 10
# A ridge on the natural-log scores, 1/1000 of one vote's curvature: a contender that won (or lost)
# every vote gets a large finite score instead of an infinite one; elsewhere it moves scores by
# well under one Elo point (tests/test_ratings.py checks against the closed form).
RIDGE = 1e-3
POINTS = SCALE / math.log(BASE)  # Elo points per natural-log unit of odds (≈ 173.7)


class NotEnoughVotes(LlamalabError):
    """Too few votes (or contenders) for a rating with an interval."""


class VotesDisconnected(LlamalabError):
    """The votes split the contenders into groups never compared with each other."""


@dataclass(frozen=True)
class Rating:
    """One contender's Bradley–Terry score with its 95 % bootstrap interval [low, high], its votes,
    wins and ties, its online Elo in vote order, and its rank (1 + how many contenders are
    surely better: their low above this one's high, as Chatbot Arena ranks)."""

    name: str
    score: float
    low: float
    high: float
    votes: int
    wins: int
    ties: int
    elo: float
    rank: int = 1

    @property
    def unanimous(self) -> bool:
        """Won every vote or lost every vote: the likelihood then has no maximum, the score is the
        ridge's finite stand-in and every resample agrees (a zero-width interval); only more votes
        say how sure the room is."""
        return self.wins == self.votes or self.wins + self.ties == 0

    def to_dict(self) -> dict:
        """The record, keyed by the metrics vocabulary (llamalab.metric)."""
        return {
            "contender": self.name,
            "rank": self.rank,
            "bt_score": self.score,
            "bt_low": self.low,
            "bt_high": self.high,
            "votes": self.votes,
            "wins": self.wins,
            "ties": self.ties,
            "elo": self.elo,
        }


@dataclass(frozen=True)
class Ratings:
    """Every contender's Rating, best first, and how they were computed. `draws` holds each
    bootstrap resample's scores (resamples × contenders, in `names` order)."""

    ratings: tuple[Rating, ...]
    votes: int
    resamples: int
    seed: int
    names: tuple[str, ...] = field(repr=False)
    draws: np.ndarray = field(repr=False, compare=False)

    def __getitem__(self, name: str) -> Rating:
        for r in self.ratings:
            if r.name == name:
                return r
        raise InvalidSetting(
            f"No contender {name!r} in these ratings.", f"Use one of {', '.join(self.names)}."
        )

    def win_probability(self, a: str, b: str) -> Interval:
        """P(a's answer is preferred to b's) under the fitted model, with the bootstrap's 95 %
        interval: the room can tell them apart when the interval leaves out 0.5."""
        import numpy as np

        i, j = self._index(a), self._index(b)
        point = _probability(self[a].score - self[b].score)
        per_draw = _probability(self.draws[:, i] - self.draws[:, j])
        low, high = np.quantile(per_draw, [0.025, 0.975])
        return Interval(point, float(low), float(high), "bootstrap")

    @property
    def summary(self) -> pd.DataFrame:
        """One row per contender, best first, with the vocabulary's columns."""
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.ratings])

    def _index(self, name: str) -> int:
        self[name]  # a clear error for an unknown name
        return self.names.index(name)


def check_vote(vote) -> str | None:
    """Why `vote` is not a usable vote record, or None when it is."""
    if not isinstance(vote, Mapping):
        return f"not a record but {type(vote).__name__}"
    a, b, winner = vote.get("a"), vote.get("b"), vote.get("winner")
    if not (isinstance(a, str) and a.strip() and isinstance(b, str) and b.strip()):
        return "'a' and 'b' must name the two contenders"
    if a == b:
        return f"a contender voted against itself ({a!r})"
    if winner not in WINNERS:
        return f"winner={winner!r} is not one of {', '.join(WINNERS)}"
    return None


def bradley_terry(
    votes: Iterable[Mapping],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    min_votes: int = MIN_VOTES,
) -> Ratings:
    """Bradley–Terry scores of every contender in `votes` (P(i preferred to j) = 1 / (1 +
    10^((s_j − s_i)/400))), fitted by maximum likelihood, with 95 % percentile intervals from
    `resamples` bootstrap resamples of the votes (seeded: the same votes give the same intervals).
    Raises NotEnoughVotes under `min_votes` votes, VotesDisconnected when some contenders were
    never compared, even indirectly, with the others."""
    import numpy as np

    validate.integer("resamples", resamples, lo=100)
    validate.integer("seed", seed, lo=0)
    validate.integer("min_votes", min_votes, lo=1)
    rows = _checked(votes)
    names = tuple(sorted({v["a"] for v in rows} | {v["b"] for v in rows}))
    if len(rows) < min_votes or len(names) < 2:
        raise NotEnoughVotes(
            f"{len(rows)} vote(s) between {len(names)} contender(s): a rating with an interval "
            f"needs at least {min_votes} votes between two or more contenders.",
            "Vote on more pairs, or pool the room's votes.",
        )
    _connected(names, rows)
    index = {n: k for k, n in enumerate(names)}
    outcomes = _outcomes(rows, index)  # unique (i, j, y) triples and how often each occurred
    counts = outcomes[:, 3]
    rng = np.random.default_rng(seed)
    # FastChat's resampling: multinomial counts over the unique outcomes
    boot = rng.multinomial(len(rows), counts / counts.sum(), size=resamples)
    weights = np.vstack([counts[None, :], boot]).astype(float)
    theta = _fit(_win_matrices(outcomes, weights, len(names)))
    scores = INITIAL + POINTS * (theta - theta.mean(axis=1, keepdims=True))
    low, high = np.quantile(scores[1:], [0.025, 0.975], axis=0)
    return Ratings(
        _ranked(names, scores[0], low, high, rows, elo(rows)),
        len(rows),
        resamples,
        seed,
        names,
        scores[1:],
    )


def elo(votes: Iterable[Mapping], k: float = ELO_K) -> dict[str, float]:
    """Online Elo in vote order (FastChat compute_elo: start at 1000, move both ratings by
    k·(result − expected) after each vote). It depends on the order of the votes, which is why
    Chatbot Arena moved to Bradley–Terry; shown for comparison."""
    validate.number("k", k, lo=0.0)
    ratings: dict[str, float] = {}
    for v in _checked(votes):
        ra, rb = ratings.setdefault(v["a"], INITIAL), ratings.setdefault(v["b"], INITIAL)
        expected = _probability(ra - rb)
        result = {"a": 1.0, "b": 0.0, "tie": 0.5}[v["winner"]]
        ratings[v["a"]] = ra + k * (result - expected)
        ratings[v["b"]] = rb - k * (result - expected)
    return ratings


# ---------------------------------------------------------------- the arithmetic


def _probability(diff):
    """P(win) for an Elo-scale score difference."""
    return 1.0 / (1.0 + BASE ** (-diff / SCALE))


def _checked(votes) -> list[Mapping]:
    if isinstance(votes, (str, bytes, Mapping)) or not isinstance(votes, Iterable):
        raise InvalidSetting(
            f"votes={votes!r:.80} is not a list of vote records.",
            'Pass records like {"a": "default/bf16", "b": "default/q4_k_m", "winner": "a"}.',
        )
    rows = list(votes)
    for i, v in enumerate(rows):
        reason = check_vote(v)
        if reason:
            raise InvalidSetting(
                f"Vote {i} is not usable: {reason}.",
                'Each vote is {"a": name, "b": name, "winner": "a" | "b" | "tie"}.',
            )
    return rows


def _connected(names: tuple[str, ...], rows: list[Mapping]) -> None:
    """VotesDisconnected unless every contender is linked to every other through votes: scores of
    groups never compared have no common scale."""
    links: dict[str, set[str]] = {n: set() for n in names}
    for v in rows:
        links[v["a"]].add(v["b"])
        links[v["b"]].add(v["a"])
    groups: list[set[str]] = []
    for n in names:
        if any(n in g for g in groups):
            continue
        group, todo = {n}, [n]
        while todo:
            for m in links[todo.pop()] - group:
                group.add(m)
                todo.append(m)
        groups.append(group)
    if len(groups) > 1:
        shown = " | ".join(", ".join(sorted(g)) for g in groups)
        raise VotesDisconnected(
            f"The votes form {len(groups)} groups never compared with each other: {shown}.",
            "Vote on pairs that mix the groups (one contender from each), then rate again.",
        )


def _outcomes(rows: list[Mapping], index: dict[str, int]):
    """Unique (i, j, y, count) rows: y = 2 when i won, 1 for a tie, 0 when j won."""
    import numpy as np

    tally: dict[tuple[int, int, int], int] = {}
    for v in rows:
        key = (index[v["a"]], index[v["b"]], {"a": 2, "tie": 1, "b": 0}[v["winner"]])
        tally[key] = tally.get(key, 0) + 1
    return np.array([(*k, c) for k, c in tally.items()], dtype=np.int64)


def _win_matrices(outcomes, weights, k: int):
    """W[r, i, j]: how much i beat j in weighting r (a tie: half a win each way)."""
    import numpy as np

    i, j, y = outcomes[:, 0], outcomes[:, 1], outcomes[:, 2] / 2.0
    w = np.zeros((len(weights), k, k))
    for t in range(len(outcomes)):
        w[:, i[t], j[t]] += weights[:, t] * y[t]
        w[:, j[t], i[t]] += weights[:, t] * (1.0 - y[t])
    return w


def _fit(w, iterations: int = 100, step_cap: float = 1.0):
    """Newton's method on the ridge-penalised Bradley–Terry log-likelihood, for every weighting at
    once; natural-log scores (P(i beats j) = σ(θi − θj)). A step longer than `step_cap` is scaled
    down (still uphill: the problem is concave), so a contender that won every vote walks out
    instead of overshooting."""
    import numpy as np

    r, k, _ = w.shape
    games = w + w.transpose(0, 2, 1)
    theta = np.zeros((r, k))
    eye = np.eye(k)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))  # p[r, i, j] = σ(θi − θj)
        grad = (w - games * p).sum(axis=2) - RIDGE * theta
        curv = games * p * (1.0 - p)
        hess = curv - eye * (curv.sum(axis=2) + RIDGE)[:, :, None]
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        largest = np.abs(step).max(axis=1, keepdims=True)
        step = step * np.minimum(1.0, step_cap / np.maximum(largest, 1e-300))
        theta = theta - step
        if np.abs(step).max() < 1e-10:
            break
    return theta


def _ranked(names, scores, low, high, rows, online) -> tuple[Rating, ...]:
    """Ratings best first, each with its tallies and its rank."""
    tallies = {n: [0, 0, 0] for n in names}  # votes, wins, ties
    for v in rows:
        for side in ("a", "b"):
            t = tallies[v[side]]
            t[0] += 1
            t[1] += v["winner"] == side
            t[2] += v["winner"] == "tie"
    made = [
        Rating(n, float(scores[k]), float(low[k]), float(high[k]), *tallies[n], online[n])
        for k, n in enumerate(names)
    ]
    made.sort(key=lambda r: -r.score)
    return tuple(replace(r, rank=1 + sum(o.low > r.high for o in made)) for r in made)
