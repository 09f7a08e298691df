"""The blind arena's round, computed once for the room: the educator runs compare() (or collects
answers from served models) and publishes the answers with their perplexity and KL on the room's
board; each learner's BlindArena fetches the latest round from there, draws its own left/right and
never loads a model. Votes go to the board as before.

    publish_round(llamalab.compare(...), name="4-bit vs 16-bit")   # the educator, room in use
    blind = room_round()                                           # a learner: LLAMALAB_ROOM set
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..measure.blind import MAX_NEW_TOKENS, BlindRound
from ..measure.rounds import round_from_record, round_record
from ..runtime.room import Room, RoomError, current_room, post_to_room, room_records

PUBLISH = "llamalab room round --schemes f16 q4_k_m"  # what the educator runs (see `--help`)
PROMPTS = (  # the blind-arena dashboard's own
    "What is the capital of France?",
    "Give one tip for a good night's sleep.",
    "Explain what a prime number is in one sentence.",
    "Write a haiku about the sea.",
    "What is 12 times 12?",
    "Name three primary colours.",
)


def publish_round(
    answers, *, name: str = "round", quality: Mapping | None = None, room: Room | None = None
) -> dict:
    """Post `answers` (compare()'s table, Answers or answer records) and their quality as one
    round on the room's board (`room`, else the one in use); the record as stored."""
    return post_to_room("rounds", round_record(answers, name=name, quality=quality), room)


def room_round(name: str | None = None, room: Room | None = None, seed=None) -> BlindRound:
    """The latest round on the room's board (named `name`, if given) as this learner's BlindRound:
    the room's pairs and quality, left/right from `seed` (None: fresh). RoomError when none is."""
    if room is None and current_room() is None:
        raise RoomError(
            "No room is in use, so there is no published round to fetch.",
            "Set LLAMALAB_ROOM to the educator's line, or make a round in this notebook: "
            "llamalab.blind_round(llamalab.compare(...)).",
        )
    got = room_records("rounds", room)
    rounds = [r for r in got.records if name is None or r.get("name") == name]
    if not rounds:
        which = f" named {name!r}" if name else ""
        raise RoomError(
            f"No round{which} is published on the room's board yet"
            + (f" ({len(got.skipped)} malformed skipped)." if got.skipped else "."),
            f"Ask the educator to publish one ({PUBLISH}), then run this cell again.",
        )
    return round_from_record(max(rounds, key=lambda r: r.get("time", 0)), seed=seed)


def compute_round(
    model: str,
    schemes: Sequence[str],
    prompts: Sequence[str] = PROMPTS,
    max_new_tokens: int = MAX_NEW_TOKENS,
    load=None,
):
    """compare()'s table for a round: each scheme's greedy answers and its perplexity and KL
    against the first scheme (loaded one at a time; minutes for the embedded model on 2 cores).
    `load`: compare()'s loader (tests pass fakes)."""
    from ..measure.compare import compare

    return compare(model, list(schemes), list(prompts), reference=schemes[0], fixed_length=False,
                   warmup=0, max_new_tokens=max_new_tokens, quality_tokens=256,
                   quality_window=128, load=load)  # fmt: skip
