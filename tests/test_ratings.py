"""Bradley–Terry ratings and online Elo from pairwise votes (llamalab/measure/ratings.py): known
answers in closed form, symmetry, ties, the bootstrap interval's coverage, and clear errors. Pure
numpy, fast."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llamalab
from llamalab import NotEnoughVotes, VotesDisconnected, bradley_terry, elo


def votes(a: str, b: str, wins_a: int, wins_b: int, ties: int = 0) -> list[dict]:
    return (
        [{"a": a, "b": b, "winner": "a"}] * wins_a
        + [{"a": a, "b": b, "winner": "b"}] * wins_b
        + [{"a": a, "b": b, "winner": "tie"}] * ties
    )


def elo_gap(p: float) -> float:
    """The Elo-scale score difference at which the higher one wins with probability p."""
    return 400 * math.log10(p / (1 - p))


def test_two_contenders_match_the_closed_form_and_the_interval_holds_the_truth():
    r = bradley_terry(votes("bf16", "q4", 80, 20))
    gap = elo_gap(0.8)  # the MLE for two contenders is their observed win rate
    assert r["bf16"].score == pytest.approx(1000 + gap / 2, abs=0.1)
    assert r["q4"].score == pytest.approx(1000 - gap / 2, abs=0.1)
    p = r.win_probability("bf16", "q4")
    assert p.mean == pytest.approx(0.8, abs=1e-3) and p.low < 0.8 < p.high
    assert p.low > 0.65 and p.high < 0.92  # 100 votes: about ±0.08
    assert r.win_probability("q4", "bf16").mean == pytest.approx(0.2, abs=1e-3)
    assert [x.name for x in r.ratings] == ["bf16", "q4"] and [x.rank for x in r.ratings] == [1, 2]
    assert (r["bf16"].votes, r["bf16"].wins, r["q4"].wins) == (100, 80, 20)


def test_a_tie_is_half_a_win_each_way():
    with_ties = bradley_terry(votes("x", "y", 30, 10, ties=20))
    as_halves = bradley_terry(votes("x", "y", 40, 20))  # 30 + 20/2 against 10 + 20/2
    assert with_ties["x"].score == pytest.approx(as_halves["x"].score, abs=1e-6)
    assert with_ties["x"].ties == 20 and with_ties["y"].ties == 20
    even = bradley_terry(votes("x", "y", 0, 0, ties=12))
    assert even["x"].score == pytest.approx(1000) == even["y"].score


def test_swapping_sides_and_names_changes_nothing():
    one = votes("m", "n", 14, 6, 3)
    swapped = [
        {"a": v["b"], "b": v["a"], "winner": {"a": "b", "b": "a", "tie": "tie"}[v["winner"]]}
        for v in one
    ]
    a, b = bradley_terry(one), bradley_terry(swapped)
    assert a["m"].score == pytest.approx(b["m"].score) and a["n"].score == pytest.approx(
        b["n"].score
    )
    assert a["m"].low == pytest.approx(b["m"].low, abs=1e-6)  # the same resamples, in any order


def test_three_contenders_recover_a_known_order_and_the_mean_is_1000():
    truth = {"fp16": 1100.0, "q8": 1050.0, "q4": 850.0}
    rng = random.Random(1)
    names = list(truth)
    record = []
    for _ in range(3000):
        a, b = rng.sample(names, 2)
        p = 1 / (1 + 10 ** ((truth[b] - truth[a]) / 400))
        record.append({"a": a, "b": b, "winner": "a" if rng.random() < p else "b"})
    r = bradley_terry(record)
    assert [x.name for x in r.ratings] == ["fp16", "q8", "q4"]
    assert sum(x.score for x in r.ratings) / 3 == pytest.approx(1000)
    for x in r.ratings:
        offset = truth[x.name] - sum(truth.values()) / 3 + 1000
        assert x.low < offset < x.high, (x, offset)
    assert r["q4"].rank == 3 and r["fp16"].rank == 1


def test_the_bootstrap_is_seeded():
    v = votes("a", "b", 13, 9, 2)
    assert bradley_terry(v, seed=3).ratings == bradley_terry(v, seed=3).ratings
    assert bradley_terry(v, seed=3)["a"].low != bradley_terry(v, seed=4)["a"].low


def test_unanimous_votes_give_a_finite_score_flagged_as_unanimous():
    r = bradley_terry(votes("a", "b", 12, 0))
    assert math.isfinite(r["a"].score) and r["a"].score > 1500 and r["a"].unanimous
    assert not bradley_terry(votes("a", "b", 8, 4))["a"].unanimous


def test_online_elo_follows_fastchat_and_depends_on_order():
    first = elo([{"a": "x", "b": "y", "winner": "a"}])
    assert first == {"x": 1002.0, "y": 998.0}  # K = 4, expected 0.5: ±4·0.5
    wins_then_losses = elo(votes("x", "y", 10, 10))
    losses_then_wins = elo(votes("x", "y", 0, 10) + votes("x", "y", 10, 0))
    assert wins_then_losses["x"] != losses_then_wins["x"]  # what BT does not do
    r = bradley_terry(votes("x", "y", 10, 10))
    assert r["x"].score == pytest.approx(1000) and r["x"].elo == wins_then_losses["x"]


def test_too_few_votes_a_disconnected_graph_and_bad_records_say_what_to_do():
    with pytest.raises(NotEnoughVotes) as e:
        bradley_terry(votes("a", "b", 3, 2))
    assert "5 vote(s)" in e.value.message and "more pairs" in e.value.fix
    with pytest.raises(NotEnoughVotes):
        bradley_terry([])
    with pytest.raises(VotesDisconnected) as d:
        bradley_terry(votes("a", "b", 6, 4) + votes("c", "d", 5, 5))
    assert "a, b | c, d" in d.value.message and "mix the groups" in d.value.fix
    for bad in ({"a": "x", "b": "x", "winner": "a"}, {"a": "x", "b": "y", "winner": "left"}, 7):
        with pytest.raises(llamalab.InvalidSetting) as i:
            bradley_terry([*votes("x", "y", 10, 10), bad])
        assert "Vote 20" in i.value.message
    with pytest.raises(llamalab.InvalidSetting):
        bradley_terry("a beats b")
    with pytest.raises(llamalab.InvalidSetting):
        bradley_terry(votes("a", "b", 6, 6))["c"]
    assert issubclass(NotEnoughVotes, llamalab.LlamalabError)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 30),
    st.integers(0, 30),
    st.integers(0, 10),
)
def test_scores_order_like_the_win_rate_and_the_interval_holds_the_score(wins_a, wins_b, ties):
    if wins_a + wins_b + ties < 10:
        wins_b += 10
    r = bradley_terry(votes("a", "b", wins_a, wins_b, ties), resamples=200)
    a, b = r["a"], r["b"]
    assert a.score + b.score == pytest.approx(2000)
    assert (a.score > b.score) == (wins_a > wins_b) or wins_a == wins_b
    assert a.low - 1e-6 <= a.score <= a.high + 1e-6
    if not a.unanimous:  # the MLE: the win probability equals the observed share
        share = (wins_a + ties / 2) / (wins_a + wins_b + ties)
        assert r.win_probability("a", "b").mean == pytest.approx(share, abs=2e-3)
