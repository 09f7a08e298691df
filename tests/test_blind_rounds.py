"""The blind arena's round computed once for the room: the educator's compare() (fake engines from
tests/fakes.py: no model) is published on the room's real board on 127.0.0.1; the blind-arena
dashboard, run in a kernel with only LLAMALAB_ROOM set, fetches it, votes and shows the leaderboard
with the published KL and perplexity, without importing torch or llama.cpp. The board checks rounds
and caps their size."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from fakes import FakeScoringEngine, Loader

from llamalab.cli import main
from llamalab.core.errors import InvalidSetting
from llamalab.measure.rounds import MAX_TEXT_CHARS
from llamalab.runtime.room import Room, RoomError, post_to_room, room_records
from llamalab.workshop import BoardVotes, publish_round, room_round, start_board
from llamalab.workshop.board import MAX_ROUND_BODY
from llamalab.workshop.rounds import compute_round

TOKEN = "room-token-for-round-tests"
PROMPTS = ["Capital of France?", "Capital of Spain?", "Say hello."]
FULL, SHORT = [1, 2, 3, 4, 5, 6, 7, 0], [1, 7, 0]  # "Paris is the capital of France." / "Paris."
AUTHORS = {"Paris is the capital of France.": "default/bf16", "Paris.": "default/q4_k_m"}

LEARNER = r"""
import json, sys
arena.voter.value = "ada"
for pair in arena.blind.pairs:   # ada prefers the longer answer
    arena.vote("1" if len(pair.answer_1) > len(pair.answer_2) else "2")
arena.reveal()
print(json.dumps({
    "pairs": sorted(p.pair_id for p in arena.blind.pairs),
    "votes": arena.ratings.votes,
    "first": arena.ratings.ratings[0].name,
    "quality": arena.blind.quality,
    "table": arena.table.value,
    "error": arena.errors.message,
    "loaded": [m for m in ("torch", "llama_cpp", "transformers") if m in sys.modules],
}))
"""


@pytest.fixture(scope="module")
def table():
    load = Loader({"bf16": FakeScoringEngine(script=FULL),
                   "q4_k_m": FakeScoringEngine(script=SHORT, shift=3)})  # fmt: skip
    return compute_round("default", ["bf16", "q4_k_m"], PROMPTS, max_new_tokens=16, load=load)


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    with start_board(tmp_path_factory.mktemp("board"), token=TOKEN) as board:
        yield Room(f"http://127.0.0.1:{board.port - 1}", TOKEN)


def test_a_learner_with_only_the_room_line_fetches_the_round_votes_and_sees_the_leaderboard(
    room, table
):
    stored = publish_round(table, name="4-bit vs 16-bit", room=room)
    assert stored["quality"]["default/q4_k_m"]["kl_vs_reference"] > 0
    for seed in range(4):  # neighbours: their own left/right, the same pairs
        theirs = room_round(room=room, seed=seed)
        for p in theirs.pairs:
            pick = "1" if AUTHORS[p.answer_1.strip()] == "default/bf16" else "2"
            BoardVotes(room).add(theirs.vote(p.pair_id, pick, f"neighbour{seed}"))
    got = _learner_runs_the_dashboard(room)
    assert got["loaded"] == []  # no model, no torch in the learner's kernel
    assert got["pairs"] == sorted(p.pair_id for p in room_round(room=room).pairs)
    assert got["error"] == "" and got["votes"] == 4 * len(PROMPTS) + len(PROMPTS)
    assert got["first"] == "default/bf16"  # every vote went to the full answer
    assert got["quality"] == stored["quality"]  # the reveal shows the published KL and perplexity
    kl = stored["quality"]["default/q4_k_m"]["kl_vs_reference"]
    assert f"{kl:.4g}" in got["table"]
    assert len(room_records("votes", room).records) == got["votes"]


def _learner_runs_the_dashboard(room: Room) -> dict:
    """The blind-arena dashboard executed in a fresh kernel whose environment names the room, and a
    last cell that votes as a learner would and reports what the arena showed."""
    from nbclient import NotebookClient

    from llamalab.course import dashboards_dir

    nb = nbformat.read(dashboards_dir() / "blind_arena.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(LEARNER))
    env = {k: v for k, v in os.environ.items() if k != "LLAMALAB_ROOM"}
    env["LLAMALAB_ROOM"] = room.line().split("=", 1)[1]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(env=env)
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return json.loads(out.strip().splitlines()[-1])


def test_the_board_checks_a_round_and_caps_its_size(room, table):
    before = len(room_records("rounds", room).records)
    one = {"name": "x", "answers": [{"contender": "a", "prompt": "p", "text": "t"}]}
    with pytest.raises(RoomError, match="2 to 8"):
        post_to_room("rounds", one, room)
    two = {**one, "answers": [*one["answers"], {"contender": "b", "prompt": "p", "text": "u"}]}
    with pytest.raises(RoomError, match="may hold only"):
        post_to_room("rounds", {**two, "quality": {"a": {"bleu": 1.0}}}, room)
    with pytest.raises(RoomError, match="unknown field"):
        post_to_room("rounds", {**two, "seed": 3}, room)  # the hidden draw never travels
    huge = [{"contender": f"m/{c}", "prompt": f"prompt {p}", "text": "x" * MAX_TEXT_CHARS}
            for c in range(8) for p in range(20)]  # fmt: skip
    with pytest.raises(RoomError, match=f"at most {MAX_ROUND_BODY}"):
        post_to_room("rounds", {"name": "huge", "answers": huge}, room)
    with pytest.raises(RoomError, match="refused the token"):
        post_to_room("rounds", two, Room(room.url, "not-the-token"))
    with pytest.raises(InvalidSetting, match="cannot be published"):  # refused before posting
        publish_round([{"contender": "a", "prompt": "p", "text": "x" * (MAX_TEXT_CHARS + 1)},
                       {"contender": "b", "prompt": "p", "text": "y"}], room=room)  # fmt: skip
    assert len(room_records("rounds", room).records) == before  # nothing stored


def test_an_oversized_record_is_refused_with_its_reason_every_time(room):
    # The board used to answer 413 while the body still arrived: about 1 post in 3 broke its pipe
    # and the learner read "the board does not answer" (CI, stop 30). It now reads the body first.
    huge = [{"contender": f"m/{c}", "prompt": f"prompt {p}", "text": "x" * MAX_TEXT_CHARS}
            for c in range(8) for p in range(20)]  # fmt: skip
    for _ in range(30):
        with pytest.raises(RoomError, match=f"at most {MAX_ROUND_BODY}"):
            post_to_room("rounds", {"name": "huge", "answers": huge}, room)
        with pytest.raises(RoomError, match="refused the token"):
            post_to_room("rounds", {"name": "huge", "answers": huge}, Room(room.url, "wrong"))
    beyond = [{**a, "text": "x" * 80_000} for a in huge]  # ~13 MB: past what the board reads
    with pytest.raises(RoomError, match=f"at most {MAX_ROUND_BODY}|over the board's limit"):
        post_to_room("rounds", {"name": "beyond", "answers": beyond}, room)


def test_the_cli_publishes_answers_and_a_missing_round_says_what_to_do(
    room, tmp_path, monkeypatch, capsys
):
    with pytest.raises(RoomError, match="llamalab room round"):
        room_round(name="served models", room=room)
    answers = [{"contender": c, "prompt": p, "text": f"{c} on {p}"}
               for c in ("llama-3.2-1b", "qwen2.5-1.5b") for p in PROMPTS]  # fmt: skip
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers))
    line = room.line()
    assert main(["room", "round", "--answers", str(path), "--name", "served models",
                 "--room", line]) == 0  # fmt: skip
    assert "2 contenders, 6 answers" in capsys.readouterr().out
    blind = room_round(name="served models", room=room, seed=1)
    assert blind.contenders == ("llama-3.2-1b", "qwen2.5-1.5b") and len(blind.pairs) == 3
    monkeypatch.delenv("LLAMALAB_ROOM", raising=False)
    with pytest.raises(RoomError, match="LLAMALAB_ROOM"):
        room_round()
