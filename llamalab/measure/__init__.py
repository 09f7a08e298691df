"""Measuring: quality (perplexity, KL), sweeps of schemes and their tables (sweep, compare), load
tests of a served model, and random weights at real shapes: GGUFs (random_weights) and
transformers checkpoints (random_checkpoint); blind arena rounds (blind) and the ratings their votes
give (ratings: Bradley–Terry with bootstrap intervals, online Elo)."""

from .blind import Answer, BlindPair, BlindRound, Revealed, blind_answers, blind_round
from .ratings import NotEnoughVotes, Rating, Ratings, VotesDisconnected, bradley_terry, elo

__all__ = [
    "Answer",
    "BlindPair",
    "BlindRound",
    "NotEnoughVotes",
    "Rating",
    "Ratings",
    "Revealed",
    "VotesDisconnected",
    "blind_answers",
    "blind_round",
    "bradley_terry",
    "elo",
]
