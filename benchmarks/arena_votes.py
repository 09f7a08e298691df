"""How many blind votes a room needs before its leaderboard can tell two contenders apart.

A simulated room of 25 voters, each voting on the same number of pairs; every vote prefers the first
contender ("bf16") with a known probability (default 60 %), ties aside. For each total of votes,
many rooms are simulated (seeded) and each is rated with `llamalab.bradley_terry` (bootstrap 95 %
intervals); the table shows how often the interval of P(bf16 preferred) leaves out 50 % (the room
tells them apart), how often it holds the true preference (coverage), and its median half-width,
beside the normal approximation's votes for the same.

    python benchmarks/arena_votes.py --preference 0.6 --rooms 200
Writes benchmarks/results/arena_votes-p<preference>-t<tie rate>.json. Pure arithmetic: no model,
no timing.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np

from llamalab import bradley_terry

VOTERS = 25
PAIRS_PER_VOTER = (1, 2, 4, 6, 8, 12, 16, 24)
Z95, Z80 = 1.959964, 0.841621  # two-sided 95 % interval; 80 % power
OUT = Path(__file__).parent / "results"


def room(n: int, preference: float, tie_rate: float, rng) -> list[dict]:
    """n votes between bf16 and q4_k_m; each a tie with tie_rate, else bf16 with `preference`."""
    u = rng.random(n)
    decisive = rng.random(n) >= tie_rate
    winners = np.where(~decisive, "tie", np.where(u < preference, "a", "b"))
    return [{"a": "bf16", "b": "q4_k_m", "winner": str(w)} for w in winners]


def normal_votes(preference: float, tie_rate: float, z_power: float) -> int:
    """Votes at which p̂ − 1.96·SE clears 0.5 (z_power = 0: in half the rooms; 0.84: in 80 %); a
    vote scores 1, ½ (a tie) or 0, so ties shrink its variance."""
    truth = preference * (1 - tie_rate) + tie_rate / 2
    sd = math.sqrt(preference * (1 - tie_rate) + tie_rate / 4 - truth**2)
    return math.ceil(((Z95 + z_power) * sd / (truth - 0.5)) ** 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preference", type=float, default=0.6)
    ap.add_argument("--tie-rate", type=float, default=0.0)
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--resamples", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    rows = []
    truth = a.preference * (1 - a.tie_rate) + a.tie_rate / 2  # a tie: half a win each way
    for per in PAIRS_PER_VOTER:
        n = VOTERS * per
        excluded, covered, half = 0, 0, []
        for r in range(a.rooms):
            ratings = bradley_terry(
                room(n, a.preference, a.tie_rate, rng), resamples=a.resamples, seed=r, min_votes=1
            )
            p = ratings.win_probability("bf16", "q4_k_m")
            excluded += p.low > 0.5
            covered += p.low <= truth <= p.high
            half.append(p.half_width)
        rows.append(
            {
                "votes": n,
                "pairs_per_voter": per,
                "rooms_telling_apart": excluded / a.rooms,
                "coverage": covered / a.rooms,
                "median_half_width": statistics.median(half),
            }
        )
        print(
            f"{n:5d} votes ({per:2d} per voter): interval leaves out 50 % in "
            f"{excluded / a.rooms:4.0%} of rooms · holds the truth in {covered / a.rooms:4.0%} · "
            f"median ± {statistics.median(half):.3f}",
            flush=True,
        )
    out = {
        "voters": VOTERS,
        "preference": a.preference,
        "tie_rate": a.tie_rate,
        "true_win_probability": truth,
        "rooms": a.rooms,
        "resamples": a.resamples,
        "seed": a.seed,
        "normal_votes_half_the_rooms": normal_votes(a.preference, a.tie_rate, 0.0),
        "normal_votes_80pct_of_rooms": normal_votes(a.preference, a.tie_rate, Z80),
        "rows": rows,
    }
    print(
        f"normal approximation: {out['normal_votes_half_the_rooms']} votes for half the rooms, "
        f"{out['normal_votes_80pct_of_rooms']} for 80 % (p = {truth:.2f})"
    )
    OUT.mkdir(exist_ok=True)
    name = f"arena_votes-p{a.preference:g}-t{a.tie_rate:g}.json"
    (OUT / name).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
