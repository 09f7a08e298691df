"""One model server for the room: `serve_room()` on the embedded model's q8_0 GGUF (a real llama.cpp
server process on 127.0.0.1, one per session: tests/conftest.py), learners that use it from a
kernel that never imports torch (notebook 00 among them), a think-time load test of five simulated
learners, and the errors a room can hit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import llamalab
from llamalab.runtime.room import ENV, RoomError, leave_room, parse_room, use_room
from llamalab.serving.server import free_port
from llamalab.workshop import latest_local, room_table

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def room(room_server):
    """The session's room (tests/conftest.py), shared with tests/test_hub.py."""
    return room_server


def test_room_prints_the_line_and_the_slot_arithmetic(room):
    text = room.instructions()
    assert room.board.port == room.server.port + 1 or f"&board={room.board.port}" in text
    assert f"Room board (learners' results and votes): {room.room.board_url}" in text
    assert f"{ENV}=http://127.0.0.1:{room.server.port}#token={room.server.api_key}" in text
    assert (
        room.sizing.slots
        == room.server.settings.parallel
        == min(room.sizing.by_memory, room.sizing.by_compute, 5)
    )
    assert "KV cache per slot" in text and "÷" in text and "cores" in text
    assert "LISTENING ON" not in text  # loopback: nothing to warn about


def test_a_learner_kernel_uses_the_room_without_torch(room):
    code = (
        "import json, sys, llamalab\n"
        "m = llamalab.load()\n"
        "g = m.generate('Name three primary colours.', max_new_tokens=8)\n"
        "from llamalab.workshop import record\n"
        "posted = record(g, name='learner-1', device=m.device)\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'device': m.device, "
        "'tokens': g.new_tokens, 'ttft': g.ttft_s, 'served': m.served_name, 'posted': posted}))\n"
    )
    env = {**os.environ, ENV: room.room.line().split("=", 1)[1], "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    assert result["torch"] is False
    assert result["device"] == "remote" and result["served"] == room.server.model_id
    assert result["tokens"] > 0 and result["ttft"] > 0
    assert "not loaded here" in out  # said once, before the first answer
    # its result went to the room's board over HTTP (no shared folder): the room's table has it
    assert result["posted"]["decode_tokens_per_s"] > 0 and result["posted"]["device"] == "remote"
    use_room(room.room.line().split("=", 1)[1])
    try:
        df = room_table()
    finally:
        leave_room()
    mine = df[df["name"] == "learner-1"].iloc[0]
    assert mine["model"] == room.server.model_id and mine["time"] == result["posted"]["time"]
    assert latest_local(df).empty  # a served result's speed is the server's: not on the roofline


def test_use_room_makes_load_serve_and_naming_a_model_stays_local(room, capsys):
    use_room(f"{room.room.url}#token={room.room.token}")
    try:
        served = llamalab.load()
        assert served.device == "remote" and served.generate("Hi", max_new_tokens=4).new_tokens
        llamalab.load()
        assert capsys.readouterr().out.count("not loaded here") == 1  # printed once
        room_load = lambda *a, **k: llamalab.load()
        df = llamalab.compare(["default"], ["q8_0"], ["Hi"], load=room_load, quality=False,
                              max_new_tokens=4)  # fmt: skip
        assert df["device"].iloc[0] == "remote" and df["decode_tokens_per_s"].iloc[0] > 0
        local = llamalab.load("default", "q4_1")  # a named scheme loads here
        assert local.device == "cpu"
        local.unload()
    finally:
        leave_room()


def test_notebook_00_runs_in_room_mode_on_the_rooms_server_without_torch(room, tmp_path):
    """Notebook 00 with LLAMALAB_ROOM set, in a fresh nbclient kernel with the answer key on: it
    completes, the room's server generated its answers, and the kernel never imported torch."""
    import nbformat
    from notebook_run import run_notebook

    nb = nbformat.read(NOTEBOOKS / "00_quickstart.ipynb", as_version=4)
    seen = tmp_path / "kernel.json"
    nb.cells.append(nbformat.v4.new_code_cell(  # what the kernel holds at the end
        "import json, sys\n"
        "json.dump({'torch': 'torch' in sys.modules, 'device': m.device, 'served': m.served_name,"
        f" 'tokens': g.new_tokens + final.new_tokens}}, open({str(seen)!r}, 'w'))"
    ))  # fmt: skip
    path = tmp_path / "00_quickstart.ipynb"
    nbformat.write(nb, path)
    predicted = "llamacpp:tokens_predicted_total"
    before = room.server.metrics()[predicted]
    env = {**os.environ, ENV: room.room.line().split("=", 1)[1]}
    record = run_notebook(sys.executable, path, env=env, timeout=180)
    assert not record["errors"], record["errors"]
    kernel = json.loads(seen.read_text())
    assert kernel["torch"] is False  # nor transformers' model: the kernel stays small
    assert kernel["device"] == "remote" and kernel["served"] == room.server.model_id
    assert room.server.metrics()[predicted] - before >= kernel["tokens"] > 0  # the room answered
    assert record["peak_rss_bytes"] < 0.5e9  # a local bf16 run of 00 peaks at 0.8-1 GB


def test_five_learners_with_think_time_complete_without_errors(room):
    result = llamalab.load_test(
        room.server, ["What is the capital of France?", "Write one sentence about the sea."],
        concurrency=5, think_s=20.0, duration_s=20.0, warmup_s=0.0, max_new_tokens=16,
    )  # fmt: skip
    row = result.summary.iloc[0]
    assert row["errors"] == 0 and row["completed"] == row["requests"] > 0
    # users think before their first request too (spread out, as in a steady state): without think
    # time all five would send at 0 s
    assert (result.records["start_s"] < 1.0).sum() < 5
    assert row["requests"] <= 15  # without it, five clients send one request after another


def test_the_room_refuses_a_wrong_token(room):
    with pytest.raises(RoomError, match="refused the token"):
        use_room(f"{room.room.url}#token=not-the-token")


def test_a_room_url_without_token_says_what_to_copy():
    with pytest.raises(RoomError, match="no token") as e:
        parse_room("http://127.0.0.1:8080")
    assert "#token=" in e.value.fix
    with pytest.raises(RoomError, match="not http://HOST:PORT"):
        parse_room("192.0.2.2:8080#token=abc")


def test_an_unreachable_room_says_what_to_check():
    with pytest.raises(RoomError, match="No room server answers") as e:
        use_room(f"http://127.0.0.1:{free_port()}#token=abc")
    assert "room server still runs" in e.value.fix


def test_a_room_env_var_without_token_fails_on_load(monkeypatch):
    monkeypatch.setenv(ENV, "http://127.0.0.1:9")
    with pytest.raises(RoomError, match="no token"):
        llamalab.load()


@pytest.mark.parametrize("host", ["10.254.254.254", "room-server.local", "::1"])
def test_a_bad_host_is_refused_before_anything_starts(host):
    from llamalab.workshop import serve_room

    with pytest.raises(llamalab.InvalidSetting, match="not an IPv4 address of this machine") as e:
        serve_room(host=host)
    assert "0.0.0.0" in e.value.fix


def test_the_cli_reports_a_bad_host():
    cli = [
        str(Path(sys.executable).parent / "llamalab"),
        "room",
        "serve",
        "--host",
        "10.254.254.254",
    ]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert done.returncode == 2 and "not an IPv4 address of this machine" in done.stderr


def test_an_explicit_network_bind_warns_and_serves_the_room():
    from llamalab.workshop import serve_room

    with serve_room(scheme="q8_0", host="0.0.0.0", slots=1, context=128, threads=1) as r:
        text = r.instructions()
        assert "LISTENING ON 0.0.0.0" in text and "Slots = 1, as asked" in text
        assert r.room.url.endswith(f":{r.server.port}")
        use_room(f"{r.room.url}#token={r.room.token}")
        try:
            assert llamalab.load().generate("Hi", max_new_tokens=4).new_tokens > 0
        finally:
            leave_room()


def test_workshop_check_reaches_the_room_with_its_token_and_names_a_wrong_one(room):
    from llamalab.workshop.check import room_server

    line = room.room.line().split("=", 1)[1]
    ok = room_server(line)
    assert ok.ok and room.server.model_id in ok.detail
    wrong = room_server(f"{room.room.url}#token=not-the-room-token")
    assert not wrong.ok and "refused the token" in wrong.detail and "room line" in wrong.fix
