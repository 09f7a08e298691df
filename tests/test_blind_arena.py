"""The blind arena against the fake engines (tests/fakes.py): answers and quality from a real
compare() sweep, pairs shown anonymously, votes resolved through the hidden mapping, the room's
votes pooled in a store, and Reveal's leaderboard. ipywidgets work headless; no model, fast."""

from __future__ import annotations

import json

import ipywidgets as w
import pytest
from fakes import FakeScoringEngine, Loader

import llamalab
from llamalab import blind_answers, blind_round, compare
from llamalab.runtime.room import Room, leave_room, use_room
from llamalab.widgets import BlindArena
from llamalab.workshop import BoardVotes, FileVotes, MemoryVotes, start_board, votes_store

PROMPTS = ["Capital of France?", "Capital of Spain?", "Name a colour.", "Say hello."]
FULL, SHORT = [1, 2, 3, 4, 5, 6, 7, 0], [1, 7, 0]  # "Paris is the capital of France." / "Paris."
NAMES = ("default/bf16", "default/q4_k_m")
TOKEN = "room-token-for-tests"


@pytest.fixture(scope="module")
def table():
    """compare() over two fake schemes: each answers every prompt, scored against bf16."""
    load = Loader(
        {
            "bf16": FakeScoringEngine(script=FULL),
            "q4_k_m": FakeScoringEngine(script=SHORT, shift=3),
        }
    )
    return compare(
        "default",
        ["bf16", "q4_k_m"],
        PROMPTS,
        quality=True,
        reference="bf16",
        quality_tokens=200,
        quality_window=64,
        fixed_length=False,
        warmup=0,
        max_new_tokens=16,
        load=load,
    )


@pytest.fixture
def blind(table):
    return blind_round(table, seed=7)


def author(blind, text: str) -> str:
    """Who wrote `text`, from what the fakes were scripted to say."""
    return {"Paris is the capital of France.": NAMES[0], "Paris.": NAMES[1]}[text.strip()]


def shown_text(widget) -> str:
    """Every string the widget tree shows (values, labels, tooltips) and its figures' data."""
    out = []
    for child in getattr(widget, "children", ()):
        out.append(shown_text(child))
    for attr in ("value", "description", "tooltip", "placeholder"):
        v = getattr(widget, attr, None)
        if isinstance(v, str):
            out.append(v)
    if hasattr(widget, "to_plotly_json"):
        out.append(json.dumps(widget.to_plotly_json(), default=str))
    return "\n".join(out)


def test_a_round_from_compare_pairs_every_prompt_and_keeps_its_quality(blind):
    assert blind.contenders == NAMES and len(blind.pairs) == len(PROMPTS)
    assert {p.prompt for p in blind.pairs} == set(PROMPTS)
    q = blind.quality
    assert q[NAMES[0]]["kl_vs_reference"] == 0 and q[NAMES[1]]["kl_vs_reference"] > 0
    assert all(q[n]["perplexity"] > 1 for n in NAMES)
    assert not blind.revealed and "default/" not in repr(blind.pairs)


def test_left_and_right_come_from_the_seed(table):
    same = [blind_round(table, seed=7).pairs for _ in range(2)]
    assert same[0] == same[1]
    firsts = {author(None, p.answer_1) for s in range(12) for p in blind_round(table, seed=s).pairs}
    assert firsts == set(NAMES)  # each contender shows up as "Answer 1" for some seeds
    assert blind_round(table).seed >= 0  # no seed: a fresh one, kept


def test_nothing_names_a_contender_before_reveal_and_votes_resolve_the_mapping(blind):
    store = MemoryVotes()
    arena = BlindArena(blind, votes=store, voter="ana")
    before = shown_text(arena)
    assert "bf16" not in before and "q4_k_m" not in before and "default/" not in before
    assert "Answer 1" in before and "Answer 2" in before and arena.reveal_button.disabled
    for choice in ("1", "2", "tie"):
        pair = arena.current
        button = next(b for b in arena.buttons if b.tooltip == choice)
        button.click()
        record = store.records()[-1]
        assert record["pair_id"] == pair.pair_id and record["voter"] == "ana"
        assert record["a"] == author(blind, pair.answer_1)
        assert record["b"] == author(blind, pair.answer_2)
        assert record["winner"] == {"1": "a", "2": "b", "tie": "tie"}[choice]
        assert "bf16" not in shown_text(arena)
    assert len(store.records()) == 3 and arena.progress.value == 3 and arena.errors.message == ""
    assert arena.reveal_button.disabled  # one pair left: Reveal comes after voting
    arena.skip_button.click()
    assert not arena.reveal_button.disabled and arena.current is None


def test_reveal_with_too_few_votes_shows_the_mapping_and_says_what_to_do(blind):
    arena = BlindArena(blind, votes=MemoryVotes(), voter="ben")
    arena.vote("1")
    arena.reveal()
    assert "more pairs" in arena.errors.fix and "Traceback" not in arena.errors.value
    assert blind.revealed and all(n in arena.mapping.value for n in NAMES)
    assert "KL" in arena.table.value  # quality still shown next to the names
    assert arena.buttons[0].disabled and not arena.reveal_button.disabled
    with pytest.raises(llamalab.InvalidSetting, match="not be blind"):
        arena.vote("1")  # after reveal, a vote would not be blind


def test_reveal_rates_the_rooms_votes_next_to_kl_and_perplexity(blind, table):
    store = MemoryVotes()
    for seed, voter in ((1, "cat"), (2, "dan"), (3, "eve")):  # the room: each prefers full answers
        other = blind_round(table, seed=seed)
        for p in other.pairs:
            pick = "1" if author(other, p.answer_1) == NAMES[0] else "2"
            store.add(other.vote(p.pair_id, pick, voter))
    arena = BlindArena(blind, votes=store, voter="fay")
    while arena.current is not None:
        arena.vote("tie")
    assert "All 4 pairs shown" in arena.status.value and arena.buttons[0].disabled
    with pytest.raises(llamalab.InvalidSetting):
        arena.vote("1")
    arena.reveal_button.click()
    r = arena.ratings
    assert r.votes == 16 and [x.name for x in r.ratings] == list(NAMES)
    assert r[NAMES[0]].wins == 12 and r[NAMES[0]].ties == 4
    assert arena.errors.message == ""
    trace = arena.figure.data[0]
    assert list(trace.y) == list(NAMES[::-1])  # best on top
    assert list(trace.x) == pytest.approx([r[n].score for n in NAMES[::-1]])
    assert trace.error_x.array[1] == pytest.approx(r[NAMES[0]].high - r[NAMES[0]].score)
    table_html = arena.table.value
    assert "Bradley–Terry score" in table_html and "KL" in table_html
    assert f"{blind.quality[NAMES[1]]['kl_vs_reference']:.4g}" in table_html
    assert "P(default/bf16 preferred)" in table_html
    for rev in blind.reveal():
        assert f"<td style='padding:2px 8px'>{rev.answer_1}</td>" in arena.mapping.value
    assert arena.figure._widget_data == arena.figure._data  # re-synced for Voilà


def test_blind_answers_from_anything_with_generate(fake):
    models = {"left/x": fake(script=FULL), "right/y": fake(script=SHORT)}
    got = blind_answers(models, ["Hi", "Bye"], max_new_tokens=12)
    assert [(a.contender, a.prompt) for a in got] == [
        ("left/x", "Hi"),
        ("left/x", "Bye"),
        ("right/y", "Hi"),
        ("right/y", "Bye"),
    ]
    assert got[0].text.startswith("Paris is the capital") and got[2].text.strip() == "Paris."
    same = blind_round(blind_answers({"a/1": fake(), "b/2": fake()}, ["Hi"]), seed=0)
    assert same.pairs[0].identical


def test_bad_input_says_what_to_do(table, fake):
    with pytest.raises(llamalab.InvalidSetting) as e:
        blind_round(table[table.scheme == "bf16"])
    assert "two contenders" in e.value.message
    with pytest.raises(llamalab.InvalidSetting):
        blind_round([{"contender": "a", "prompt": "p"}])
    with pytest.raises(llamalab.InvalidSetting):
        blind_answers({"only": fake()}, ["Hi"])
    b = blind_round(table, seed=0)
    with pytest.raises(llamalab.InvalidSetting):
        b.vote(b.pairs[0].pair_id, "left", "ana")
    with pytest.raises(llamalab.InvalidSetting):
        b.vote("no-such-pair", "1", "ana")
    arena = BlindArena(b, votes=MemoryVotes(), voter="")
    arena.buttons[0].click()  # no name: shown inline, nothing stored
    assert "voter" in arena.errors.message and arena.store.records() == []


def test_a_votes_file_pools_kernels_and_skips_what_is_not_a_vote(tmp_path, blind):
    one, two = FileVotes(tmp_path), FileVotes(tmp_path)
    one.add(blind.vote(blind.pairs[0].pair_id, "1", "ana"))
    two.add(blind.vote(blind.pairs[1].pair_id, "2", "ben"))
    with open(tmp_path / "votes.jsonl", "a") as f:
        f.write('{"a": "x", "b": "x", "winner": "a"}\n{"half')
    got = one.records()
    assert [v["voter"] for v in got] == ["ana", "ben"] and len(one.skipped) == 2
    with pytest.raises(llamalab.InvalidSetting):
        one.add({"a": "x", "winner": "a"})
    assert isinstance(votes_store(), MemoryVotes) and isinstance(votes_store(tmp_path), FileVotes)
    assert isinstance(BlindArena(blind, votes=one), w.VBox)


def test_in_a_room_the_votes_go_to_the_board_and_the_leaderboard_pools_them(
    tmp_path, blind, table, monkeypatch
):
    """The room's real board on 127.0.0.1 (no model server): two learners' kernels, one board."""
    monkeypatch.delenv("LLAMALAB_ROOM", raising=False)
    with start_board(tmp_path / "board", token=TOKEN) as board:
        use_room(Room(f"http://127.0.0.1:{board.port - 1}", TOKEN).line().split("=", 1)[1],
                 check=False)  # fmt: skip
        try:
            store = votes_store(tmp_path / "ignored")  # a room wins over a folder
            assert isinstance(store, BoardVotes)
            other = blind_round(table, seed=11)  # a neighbour: other left/right, same pair ids
            for p in other.pairs * 3:
                pick = "1" if author(other, p.answer_1) == NAMES[0] else "2"
                BoardVotes().add(other.vote(p.pair_id, pick, "neighbour"))
            arena = BlindArena(blind, voter="ana")  # default store: the board
            assert isinstance(arena.store, BoardVotes)
            arena.vote("tie")
            arena.reveal()
            assert arena.errors.message == "" and arena.ratings.votes == 13
            assert arena.ratings[NAMES[0]].wins == 12 and arena.ratings[NAMES[0]].ties == 1
            assert (tmp_path / "board" / "votes.jsonl").read_text().count("\n") == 13
            assert not (tmp_path / "ignored").exists()
        finally:
            leave_room()
