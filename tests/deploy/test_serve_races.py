"""serve() without races, one test per property, against a stand-in server process
(tests/deploy/fake_llama_server.py: the server process's contract, no model, starts in ~1 s): the
port is bound by the server process, never picked here; a port another process owns never receives
the key; a server that answers without checking the key is rejected; os.environ is untouched;
threads follow the CPU quota; the log folder goes with the server unless kept."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from llamalab.core import container, tasks
from llamalab.core.container import Limits
from llamalab.serving import server as server_module
from llamalab.serving.server import ServerFailed, ServeSettings, listening_ports, serve

KEY = "test-key-7f3a9c1e5b"
HERE = Path(__file__).parent


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """serve() runs the stand-in; returns what it recorded and the Tasks serve() started."""
    monkeypatch.setattr(server_module, "SERVER_MAIN", "fake_llama_server")
    monkeypatch.setattr(server_module, "_require_xllamacpp", lambda: None)
    monkeypatch.setattr(server_module, "gguf_for", lambda m, s: (str(tmp_path / "m.gguf"), None, s))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FAKE_SERVER_RECORD", str(tmp_path / "record.jsonl"))
    started = []
    start = tasks.start_process

    def start_and_keep(*a, **k):
        started.append(start(*a, **k))
        return started[-1]

    monkeypatch.setattr(tasks, "start_process", start_and_keep)

    class Fake:
        tasks = started

        @staticmethod
        def records() -> list[dict]:
            path = tmp_path / "record.jsonl"
            lines = path.read_text().splitlines() if path.exists() else []
            return [json.loads(line) for line in lines]

        @staticmethod
        def mode(name: str) -> None:
            monkeypatch.setenv("FAKE_SERVER_MODE", name)

    before = _children()
    yield Fake
    assert _children() <= before  # nothing left running
    assert all(not Path(t.workdir).exists() for t in started)  # no temporary folder left


def _children() -> set[int]:
    return {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE
    }


def _serve(**kw):
    return serve("m.gguf", **{"api_key": KEY, "start_timeout": 30, "threads": 1, **kw})


def test_the_server_process_binds_the_port_itself_and_the_kit_never_picks_one(fake, monkeypatch):
    def no_picking():
        raise AssertionError("serve() picked a port for the server process to bind later")

    monkeypatch.setattr(server_module, "free_port", no_picking)
    with _serve() as s:
        assert fake.records()[0]["config"]["port"] == 0  # the child was told: bind any free port
        assert s.port in listening_ports(s.pid) and s.url == f"http://127.0.0.1:{s.port}"
        assert s.connect().engine.served_models() == ["m"]


def test_a_port_owned_by_another_process_never_receives_the_key(fake, monkeypatch):
    """The server process says it listens on a port another program owns (as if that program had
    taken the port between a choice and a bind): refused before any request is sent."""
    seen = []

    class Impostor(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Impostor) as impostor:
        threading.Thread(target=impostor.serve_forever, daemon=True).start()
        fake.mode("elsewhere")
        monkeypatch.setenv("FAKE_SERVER_ADDRESS", f"http://127.0.0.1:{impostor.server_address[1]}")
        with pytest.raises(ServerFailed, match="another program listens there") as e:
            _serve()
        impostor.shutdown()
    assert seen == []  # not even /health: no request, no key
    assert "ss -ltnp" in e.value.fix and e.value.log_tail


def test_a_port_already_taken_when_asked_for_is_a_clear_error(fake):
    with (
        ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as taken,
        pytest.raises(ServerFailed, match="ended before it was listening") as e,
    ):
        _serve(port=taken.server_address[1])
    assert "Address already in use" in e.value.log_tail


def test_a_server_that_never_says_healthy_runs_out_of_time_and_is_stopped(fake, monkeypatch):
    monkeypatch.setattr(server_module, "_healthy", lambda server: False)
    with pytest.raises(ServerFailed, match="not healthy within") as e:
        _serve(start_timeout=8)
    assert "start_timeout" in e.value.fix and not fake.tasks[0].running


def test_a_server_answering_200_without_checking_the_key_is_rejected(fake):
    fake.mode("careless")
    with pytest.raises(ServerFailed, match="answered 200 to a request without the key") as e:
        _serve()
    assert "not the llama.cpp server this process started" in e.value.message
    got = [r["authorization"] for r in fake.records() if "authorization" in r]
    assert got and KEY not in "".join(got)  # the keyless request went first; the key never did


def test_a_server_that_refuses_our_key_is_rejected(fake):
    fake.mode("lockout")
    with pytest.raises(ServerFailed, match="answered 401 to our key"):
        _serve()


def test_os_environ_is_unchanged_and_the_key_reaches_only_the_server_process(fake):
    environ = dict(os.environ)
    with _serve() as s:
        assert dict(os.environ) == environ
        later = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ)"], capture_output=True, text=True
        )
        assert KEY not in later.stdout  # a subprocess started later does not inherit it
        assert s.api_key == KEY and s.key_env == ""
        assert KEY not in repr(s) and KEY not in repr(s.connect()) and KEY not in str(vars(s))
        assert KEY not in str(vars(s.connect().engine))
        log = s.log_path.read_text()
    assert dict(os.environ) == environ
    assert KEY not in log and KEY not in s.tail()
    first = fake.records()[0]
    assert first["got_key"] and not first["key_left_in_env"]


@pytest.mark.parametrize("quota", [1.0, 2.0])
def test_threads_follow_the_cpu_quota(fake, monkeypatch, quota):
    monkeypatch.setattr(container, "limits", lambda: Limits(cpu_quota=quota))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    expected = min(int(quota), len(os.sched_getaffinity(0)))
    with serve("m.gguf", api_key=KEY, start_timeout=30) as s:
        assert s.threads == expected
    assert fake.records()[0]["config"]["threads"] == expected


def test_the_log_folder_is_removed_with_the_server(fake):
    with _serve() as s:
        folder = Path(s.task.workdir)
        assert folder.is_dir() and s.log_path.is_relative_to(folder)
    assert not folder.exists() and s.log_path is None


def test_a_failed_start_leaves_no_log_folder(fake):
    fake.mode("careless")
    with pytest.raises(ServerFailed):
        _serve()
    assert fake.tasks and not Path(fake.tasks[0].workdir).exists()


def test_keep_logs_keeps_the_log_after_stop(fake):
    with _serve(keep_logs=True) as s:
        folder = Path(s.task.workdir)
    try:
        assert not folder.exists()
        assert "fake server: starting" in s.log_path.read_text()
    finally:
        s.log_path.unlink()


def test_new_settings_are_checked_and_explained():
    help_of = {f.name: f.metadata["help"] for f in ServeSettings.__dataclass_fields__.values()}
    assert "binds a free one itself" in help_of["port"] and "log_path" in help_of["keep_logs"]
    assert "quota" in help_of["threads"]
    with pytest.raises(Exception, match="port"):
        ServeSettings(port=70000)
    with pytest.raises(Exception, match="keep_logs"):
        ServeSettings(keep_logs="yes")
    with pytest.raises(Exception, match="prompt_cache"):
        ServeSettings(prompt_cache="no")
    assert "--no-cache-prompt" in help_of["prompt_cache"]
