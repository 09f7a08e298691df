"""The room's board: a real HTTP service on 127.0.0.1 (`start_board`, no model server needed) that
learners post results and votes to with the room token; what it refuses (no token, malformed
records, big bodies, symlinks), what it skips when reading, a Binder-like learner process with no
shared folder, and the dashboard's side: the table, the spread and the roofline chart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

import llamalab
from llamalab.plan.speed import bytes_per_step
from llamalab.plots import room_roofline_figure, with_roofline
from llamalab.runtime.room import (
    BOARD_KINDS,
    ENV,
    Room,
    RoomError,
    leave_room,
    parse_room,
    post_to_room,
    room_records,
    use_room,
)
from llamalab.serving.server import free_port
from llamalab.workshop import (
    destination,
    latest_local,
    record,
    room_spread,
    room_table,
    skipped_note,
    start_board,
)
from llamalab.workshop.board import FIELDS, MAX_BODY
from llamalab.workshop.lines import SymlinkRefused

TOKEN = "room-token-for-tests"


def result(name="ana", tps=30.0, bw=20e9, **over) -> dict:
    """A results record as a learner's kernel posts it."""
    return {"name": name, "model": "smollm2-135m", "scheme": "q8_0", "device": "cpu",
            "decode_tokens_per_s": tps, "ttft_s": 0.2, "prompt_tokens": 30, "new_tokens": 40,
            "peak_memory_bytes": 3e8, "peak_memory_kind": "process RSS",
            "bandwidth_bytes_s": bw, **over}  # fmt: skip


VOTE = {"pair_id": "p1", "a": "default/bf16", "b": "default/q4_k_m", "winner": "tie", "voter": "bo"}


@pytest.fixture
def board(tmp_path):
    with start_board(tmp_path / "board", token=TOKEN) as b:
        yield b
    assert not b.task.running  # stopped: its thread has ended


@pytest.fixture
def room(board):
    return Room(f"http://127.0.0.1:{board.port - 1}", TOKEN)  # the default: board on port + 1


@pytest.fixture
def in_room(room, monkeypatch):
    monkeypatch.delenv("LLAMALAB_ROOM_DIR", raising=False)
    use_room(room.line().split("=", 1)[1], check=False)
    yield room
    leave_room()


def raw(board, path: str, body: bytes | None = None, token: str | None = TOKEN):
    """(status, JSON answer) of one request made by hand."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"{board.url}{path}", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_board_keeps_the_kinds_the_client_asks_for():
    assert set(FIELDS) == set(BOARD_KINDS) == {"results", "votes", "rounds"}


def test_a_posted_result_and_vote_read_back_with_the_board_time(board, room):
    stored = post_to_room("results", result(), room)
    assert stored["name"] == "ana" and stored["time"] > 0
    post_to_room("votes", VOTE, room)
    got = room_records("results", room)
    assert got.records == (stored,) and got.skipped == ()
    assert [v["winner"] for v in room_records("votes", room).records] == ["tie"]
    assert sorted(p.name for p in board.folder.iterdir()) == ["results.jsonl", "votes.jsonl"]
    assert oct(board.folder.stat().st_mode & 0o777) == "0o700"
    assert oct((board.folder / "results.jsonl").stat().st_mode & 0o777) == "0o600"


def test_no_token_or_a_wrong_one_is_refused_and_nothing_is_stored(board, room):
    status, body = raw(board, "/results", json.dumps(result()).encode(), token=None)
    assert status == 401 and "room token" in body["error"]
    assert raw(board, "/results", token="nearly-" + TOKEN)[0] == 401
    wrong = Room(room.url, "not-the-token")
    with pytest.raises(RoomError, match="refused the token") as e:
        post_to_room("results", result(), wrong)
    assert "token changes" in e.value.fix
    assert room_records("results", room).records == ()


@pytest.mark.parametrize(
    ("record_", "why"),
    [
        ({k: v for k, v in result().items() if k != "model"}, "model is missing"),
        (result(extra="x"), "unknown field(s) ['extra']"),
        (result(tps=-1.0), "decode_tokens_per_s must be a number ≥ 0"),
        (result(tps=True), "decode_tokens_per_s must be a number ≥ 0"),
        (result(prompt_tokens=3.5), "prompt_tokens must be a whole number"),
        (result(name="x" * 41), "name is longer than 40 characters"),
        (result(name="  "), "name must be non-empty text"),
        ({**VOTE, "winner": "c"}, "winner must be one of ['a', 'b', 'tie']"),
    ],
)
def test_a_malformed_record_is_rejected_with_the_reason(board, room, record_, why):
    kind = "votes" if "pair_id" in record_ else "results"
    with pytest.raises(RoomError, match="rejected the record") as e:
        post_to_room(kind, record_, room)
    assert why in e.value.message and "nothing was stored" in e.value.fix
    assert room_records(kind, room).records == ()


def test_not_json_a_non_object_nan_and_a_big_body_are_refused(board):
    assert raw(board, "/results", b"{not json")[1]["error"].startswith("not valid JSON")
    assert raw(board, "/results", b"[1, 2]") == (400, {"error": "a JSON list, not an object"})
    nan = json.dumps(result()).replace("30.0", "NaN").encode()
    assert raw(board, "/results", nan)[0] == 400
    status, body = raw(board, "/results", b" " * (MAX_BODY + 1))
    assert status == 413 and str(MAX_BODY) in body["error"]
    assert raw(board, "/secrets")[0] == 404


def test_a_malformed_line_in_the_file_is_skipped_and_reported(board, room):
    post_to_room("results", result("ana"), room)
    with open(board.folder / "results.jsonl", "a") as f:
        f.write('{"name": "half-writ\n')  # a line cut short
        f.write(json.dumps({**result("eve"), "time": 1.0, "admin": True}) + "\n")  # hand-made
    post_to_room("results", result("bo"), room)
    got = room_records("results", room)
    assert [r["name"] for r in got.records] == ["ana", "bo"]
    assert [(s["line"], s["why"][:14]) for s in got.skipped] == [
        (2, "not valid JSON"),
        (3, "unknown field("),
    ]


def test_concurrent_posts_stay_whole_lines(board, room):
    threads = [threading.Thread(target=post_to_room, args=("results", result(f"l{i}"), room))
               for i in range(16)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = room_records("results", room)
    assert len(got.records) == 16 and got.skipped == ()


def test_a_symlinked_folder_or_file_is_refused(tmp_path):
    real, outside = tmp_path / "real", tmp_path / "outside.jsonl"
    real.mkdir()
    outside.write_text("")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(SymlinkRefused, match="symbolic link") as e:
        start_board(tmp_path / "link", token=TOKEN)
    assert "real folder" in e.value.fix
    (real / "votes.jsonl").symlink_to(outside)
    with pytest.raises(SymlinkRefused, match="votes.jsonl"):
        start_board(real, token=TOKEN)
    (real / "votes.jsonl").unlink()
    with start_board(real, token=TOKEN) as b:  # a link planted while the board runs
        (real / "results.jsonl").symlink_to(outside)
        room = Room(f"http://127.0.0.1:{b.port - 1}", TOKEN)
        with pytest.raises(RoomError, match="symbolic link"):
            post_to_room("results", result(), room)
        skipped = room_records("results", room).skipped
    assert outside.read_text() == "" and skipped[0]["why"] == "a symbolic link: not read"


def test_the_shared_folder_never_follows_a_symlink_either(tmp_path):
    (tmp_path / "outside.jsonl").write_text("")
    (tmp_path / "room").mkdir()
    (tmp_path / "room" / "m.jsonl").symlink_to(tmp_path / "outside.jsonl")
    with pytest.raises(SymlinkRefused):
        record(result(), tmp_path / "room", machine="m")
    record(result(), tmp_path / "room", name="bo", machine="other")
    df = room_table(tmp_path / "room")
    assert list(df["name"]) == ["bo"] and "1 skipped (a symbolic link" in skipped_note(df)
    assert (tmp_path / "outside.jsonl").read_text() == ""


def test_the_room_line_carries_the_board_port_when_it_is_not_port_plus_one():
    room = parse_room("http://192.0.2.2:8080#token=abc")
    assert room.board_url == "http://192.0.2.2:8081" and room.line().endswith("#token=abc")
    moved = parse_room("http://192.0.2.2:8080#token=abc&board=9000")
    assert moved.board_url == "http://192.0.2.2:9000" and moved.token == "abc"
    assert parse_room(moved.line().split("=", 1)[1]) == moved
    assert "abc" not in repr(moved)
    with pytest.raises(RoomError, match="board port 'x'"):
        parse_room("http://192.0.2.2:8080#token=abc&board=x")


def test_without_a_room_or_a_board_the_client_says_what_to_do(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    leave_room()
    with pytest.raises(RoomError, match="No room is in use") as e:
        post_to_room("results", result())
    assert "use_room" in e.value.fix
    nowhere = Room(f"http://127.0.0.1:{free_port()}", TOKEN, board_port=free_port())
    with pytest.raises(RoomError, match="does not answer") as e:
        room_records("results", nowhere)
    assert "room server still runs" in e.value.fix
    with pytest.raises(RoomError, match="no 'scores' records"):
        room_records("scores", nowhere)


def test_in_a_room_record_posts_to_the_board_and_the_table_reads_it(board, in_room, tmp_path):
    generation = {k: v for k, v in result().items() if k not in ("name", "bandwidth_bytes_s")}
    bw = llamalab.memory_bandwidth(buffer_mb=32, runs=1)
    stored = record(generation, name="ana", device="cpu", bandwidth=bw)
    assert stored["bandwidth_bytes_s"] == bw.bytes_per_s and destination().startswith("the room")
    record(generation, tmp_path / "folder", name="bo")  # an explicit folder still wins
    record({"model": "smollm2-135m", "decode_tokens_per_s": 5.0}, name="cy", device="cpu")
    df = room_table()
    assert list(df["name"]) == ["ana", "cy"] and skipped_note(df) == ""
    assert set(FIELDS["results"]) <= set(df.columns)  # every column, posted or not
    assert df["ttft_s"].isna().tolist() == [False, True]
    assert list(room_table(tmp_path / "folder")["name"]) == ["bo"]


def test_a_binder_like_learner_with_no_shared_folder_posts_and_the_dashboard_sees_it(
    board, room, tmp_path, monkeypatch
):
    """A separate process whose only room setting is LLAMALAB_ROOM (no LLAMALAB_ROOM_DIR, a fresh
    HOME): it measures its bandwidth and posts a result; this process reads the room's table."""
    generation = {k: v for k, v in result().items() if k not in ("name", "bandwidth_bytes_s")}
    code = (
        "import json, llamalab\n"
        "from llamalab.workshop import record\n"
        "bw = llamalab.memory_bandwidth(buffer_mb=32, runs=2)\n"
        f"gen = {json.dumps(generation)}\n"
        "print(json.dumps(record(gen, name='binder-ana', device='cpu', bandwidth=bw)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMALAB_")}
    home = tmp_path / "home"
    home.mkdir()
    env.update({ENV: room.line().split("=", 1)[1], "HOME": str(home), "HF_HUB_OFFLINE": "1"})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    posted = json.loads(out.strip().splitlines()[-1])
    assert not list(home.rglob("*.jsonl"))  # nothing written on the learner's side
    monkeypatch.delenv("LLAMALAB_ROOM_DIR", raising=False)
    use_room(room.line().split("=", 1)[1], check=False)
    try:
        df = room_table()
    finally:
        leave_room()
    assert list(df["name"]) == ["binder-ana"]
    assert df["bandwidth_bytes_s"].iloc[0] == posted["bandwidth_bytes_s"] > 1e8
    fig = room_roofline_figure(latest_local(df))
    point = next(t for t in fig.data if t.mode == "markers+text")
    assert list(point.text) == ["binder-ana"]
    assert point.x[0] == pytest.approx(posted["bandwidth_bytes_s"] / 1e9)


def test_the_spread_and_the_roofline_chart_come_from_the_records():
    rows = [
        result("ana", 20.0, 10e9, time=1.0),
        result("bo", 35.0, 20e9, time=2.0),
        result("cy", 50.0, 40e9, time=3.0),
        result("ana", 25.0, 12e9, time=4.0),  # ana again: her latest counts
        result("dee", 90.0, None, time=5.0),  # no bandwidth: in the spread, not on the chart
        result("eve", 60.0, 5e9, device="remote", time=6.0),  # the room server's speed: left out
    ]
    import pandas as pd

    latest = latest_local(pd.DataFrame(rows))
    assert sorted(latest["name"]) == ["ana", "bo", "cy", "dee"]
    spread = room_spread(pd.DataFrame(rows))
    assert (spread.learners, spread.decode_median, spread.decode_min, spread.decode_max) == (
        4, 42.5, 25.0, 90.0)  # fmt: skip
    assert (spread.bandwidth_min, spread.bandwidth_max) == (12e9, 40e9)
    assert spread.rank_correlation == pytest.approx(1.0) and spread.ranked_n == 3
    assert "faster memory decoded faster" in spread.lesson
    per_token = bytes_per_step("smollm2-135m", "q8_0", 70)
    shares = with_roofline(latest).set_index("name")["roofline_share"]
    assert shares["bo"] == pytest.approx(35.0 / (20e9 / per_token))
    fig = room_roofline_figure(latest)
    line = next(t for t in fig.data if t.mode == "lines")
    assert line.y[1] / line.x[1] == pytest.approx(1e9 / per_token)  # tokens/s = GB/s ÷ bytes
    assert "1 without a measured bandwidth" in fig.layout.title.text
    reversed_ = pd.DataFrame([result("a", 50.0, 10e9), result("b", 35.0, 20e9),
                              result("c", 20.0, 40e9)])  # fmt: skip
    assert "did not order decode speed" in room_spread(reversed_).lesson
