"""The endpoint client never hides a failure, against small real HTTP servers on 127.0.0.1 (a thread
each) that behave like the servers and providers it meets: llama.cpp's mid-stream error event
(exact bytes: research notes serving-facts.md §4.1), non-UTF-8 bytes, Together's bare model list,
429/503 with Retry-After, a stall past the deadline, keep-alive (and llama.cpp's close after each
stream), and which server takes which extra request fields."""

from __future__ import annotations

import json
import threading
import time
import warnings
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("httpx", reason='the deploy extra is not installed: pip install -e ".[deploy]"')

from llamalab import InvalidSetting, connect, load_test
from llamalab.engines.http import (
    EndpointBusy,
    EndpointError,
    EndpointSettings,
    EndpointStreamError,
    EndpointTimeout,
    retry_after_s,
    utf8_lines,
)
from llamalab.engines.openai import OpenAIEngine

MODEL = "fake-model"
CHAT = "/v1/chat/completions"


def chunk(text: str, finish: str | None = None) -> bytes:
    c = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    return b"data: " + json.dumps(c).encode() + b"\n\n"


USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}\n\n'
DONE = b"data: [DONE]\n\n"
GOOD = [chunk("Par"), chunk("is"), chunk(".", "stop"), USAGE, DONE]
# llama.cpp's current mid-stream error: one `data:` frame with the error, then the end, no [DONE]
# (server-context.cpp + format_oai_sse, serving-facts.md §4.1).
LLAMACPP_ERROR = b'data: {"error":{"code":500,"message":"slot crashed","type":"server_error"}}\n\n'


class Handler(BaseHTTPRequestHandler):
    """Answers from the server's `routes` {(method, path): function(handler)}; HTTP/1.1, so a
    connection stays open between requests unless the route closes it."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
        self.closing = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def _answer(self, method: str):
        n = int(self.headers.get("Content-Length") or 0)
        self.body = json.loads(self.rfile.read(n)) if n else None
        with self.server.lock:
            self.server.requests.append((method, self.path, self.body))
        if self.closing:  # llama.cpp: the connection was done after its stream
            self.server.dropped += 1
            self.close_connection = True
            return
        route = self.server.routes.get((method, self.path))
        if route is None:
            return send_json(self, 404, {"error": {"message": "no route"}})
        route(self)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes, self.lock = routes, threading.Lock()
        self.connections = self.dropped = 0
        self.requests: list = []
        self.release = threading.Event()  # set at the end: stalled handlers return
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def posts(self) -> list[dict]:
        return [body for method, _, body in self.requests if method == "POST"]

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()
        self.thread.join(5)


@pytest.fixture
def serve_routes():
    started: list[FakeServer] = []

    def start(routes: dict) -> FakeServer:
        s = FakeServer({("GET", "/v1/models"): models_route(), **routes})
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def send_json(h, status: int, obj, headers: dict | None = None):
    data = json.dumps(obj).encode()
    h.send_response(status)
    for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def send_stream(h, frames: list[bytes], *, llamacpp_close=False, stall_after: int | None = None):
    """A chunked SSE response. llamacpp_close: like llama.cpp's server, keep advertising
    keep-alive but be done with the connection after the stream (the next request on it is
    dropped unanswered). stall_after: stop sending after that many frames, until released."""
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Transfer-Encoding", "chunked")
    h.send_header("Keep-Alive", "timeout=5, max=100")
    h.end_headers()
    for i, frame in enumerate(frames):
        if stall_after is not None and i == stall_after:
            h.server.release.wait(60)
            return
        h.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        h.wfile.flush()
    h.wfile.write(b"0\r\n\r\n")
    h.wfile.flush()
    h.closing = llamacpp_close


def stream_route(frames, **kw):
    return lambda h: send_stream(h, frames, **kw)


def models_route(body=None):
    body = body if body is not None else {"object": "list", "data": [{"id": MODEL}]}
    return lambda h: send_json(h, 200, body)


def sequence(*routes):
    """A route answering its n-th request with routes[n] (the last one after that)."""
    calls = iter(range(10**6))
    return lambda h: routes[min(next(calls), len(routes) - 1)](h)


def status_route(status: int, retry_after: str | None = None):
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return lambda h: send_json(h, status, {"error": {"message": f"status {status}"}}, headers)


# ---- failures inside a stream -------------------------------------------------------------------
def test_an_sse_error_event_mid_stream_raises(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route([chunk("Par"), chunk("is"), LLAMACPP_ERROR])})
    m = connect(s.url, MODEL)
    with pytest.raises(EndpointStreamError, match="slot crashed") as e:
        m.generate("Hi", max_new_tokens=8)
    assert "server_error" in e.value.message and "server.tail()" in e.value.fix
    assert m.engine.stats.failures == 1


@pytest.mark.parametrize(
    "frames",
    [
        # llama.cpp before PR #16109 (2025-09): a non-standard `error:` field, then [DONE]
        [
            chunk("Hi"),
            b'error: {"code":500,"message":"slot crashed","type":"server_error"}\n\n',
            DONE,
        ],
        # the Anthropic-style dialect: the SSE event name says error
        [
            chunk("Hi"),
            b'event: error\ndata: {"type":"error","error":{"message":"slot crashed"}}\n\n',
        ],
    ],
    ids=["llamacpp-2024-error-field", "event-error"],
)
def test_older_and_other_error_dialects_raise(serve_routes, frames):
    s = serve_routes({("POST", CHAT): stream_route(frames)})
    with pytest.raises(EndpointStreamError, match="slot crashed"):
        connect(s.url, MODEL).generate("Hi", max_new_tokens=8)


def test_a_stream_that_stops_before_done_raises(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route([chunk("Par"), chunk("is")])})
    with pytest.raises(EndpointStreamError, match="ended before the server said it was done"):
        connect(s.url, MODEL).generate("Hi", max_new_tokens=8)


def test_non_utf8_bytes_raise_instead_of_becoming_replacement_characters(serve_routes):
    bad = b'data: {"choices":[{"index":0,"delta":{"content":"caf\xe9"}}]}\n\n'  # Latin-1 é
    s = serve_routes({("POST", CHAT): stream_route([chunk("Hi"), bad, *GOOD])})
    with pytest.raises(EndpointStreamError, match="not UTF-8"):
        connect(s.url, MODEL).generate("Hi", max_new_tokens=8)


def test_utf8_lines_keep_a_character_split_across_reads_and_every_line_ending():
    e_acute = "é".encode()
    pieces = [b"data: caf" + e_acute[:1], e_acute[1:] + b"\r\n", b"a\rb\nc"]
    assert list(utf8_lines(pieces)) == ["data: café", "a", "b", "c"]


def test_a_good_stream_still_works_and_counts_its_usage(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route(GOOD)})
    g = connect(s.url, MODEL).generate("Hi", max_new_tokens=8)
    assert g.text == "Paris." and g.new_tokens == 3 and g.prompt_tokens == 5


def test_a_load_test_records_a_mid_stream_error_as_an_error_row(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route([chunk("Par"), LLAMACPP_ERROR])})
    r = load_test(connect(s.url, MODEL), ["Hi"], concurrency=[2], requests=4, max_new_tokens=4)
    rec = r.records
    assert len(rec) == 4 and not rec["ok"].any()
    assert rec["error"].str.contains("EndpointStreamError").all()
    assert r.summary["errors"].iloc[0] == 4 and r.summary["completed"].iloc[0] == 0


# ---- /v1/models shapes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"object": "list", "data": [{"id": MODEL, "object": "model"}]},  # OpenAI, vLLM
        [{"id": MODEL, "object": "model", "type": "chat"}],  # Together: a bare list
        {"models": [{"name": MODEL}], "object": "list", "data": [{"id": MODEL}]},  # llama.cpp
        {"data": [{"id": "other", "aliases": [MODEL]}]},  # llama.cpp's aliases
    ],
    ids=["openai", "together-bare-list", "llamacpp", "alias"],
)
def test_every_models_shape_is_read(serve_routes, body):
    s = serve_routes({("GET", "/v1/models"): models_route(body)})
    assert MODEL in connect(s.url, MODEL).engine.served_models()


def test_ollama_tags_are_read(serve_routes):
    tags = {"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest"}]}
    s = serve_routes({("GET", "/api/tags"): models_route(tags)})
    m = connect(s.url, "llama3.2", api="ollama")
    assert m.engine.served_models() == ["llama3.2:latest"]


@pytest.mark.parametrize("body", [{"detail": "nope"}, "a string"], ids=["dict", "string"])
def test_an_unknown_models_shape_is_a_clear_error(serve_routes, body):
    s = serve_routes({("GET", "/v1/models"): models_route(body)})
    with pytest.raises(EndpointError, match="not a model list") as e:
        connect(s.url, MODEL)
    assert "/v1/models" in e.value.fix


def test_a_page_that_is_not_json_is_a_clear_error(serve_routes):
    def html(h):
        h.send_response(200)
        h.send_header("Content-Length", "15")
        h.end_headers()
        h.wfile.write(b"<html>hi</html>")

    s = serve_routes({("GET", "/v1/models"): html})
    with pytest.raises(EndpointError, match="did not answer JSON"):
        connect(s.url, MODEL)


# ---- retries ------------------------------------------------------------------------------------
def test_a_429_with_retry_after_is_retried_after_that_wait(serve_routes):
    s = serve_routes({("POST", CHAT): sequence(status_route(429, "1"), stream_route(GOOD))})
    m = connect(s.url, MODEL)
    t0 = time.monotonic()
    g = m.generate("Hi", max_new_tokens=8)
    assert g.text == "Paris." and time.monotonic() - t0 >= 1.0
    assert m.engine.stats.retries == 1 and len(s.posts()) == 2


def test_a_503_without_retry_after_backs_off_and_counts(serve_routes):
    s = serve_routes(
        {("POST", CHAT): sequence(status_route(503), status_route(503), stream_route(GOOD))}
    )
    m = connect(s.url, MODEL, backoff_s=0.1)
    assert m.generate("Hi", max_new_tokens=8).text == "Paris."
    assert m.engine.stats.retries == 2


def test_retries_are_bounded(serve_routes):
    s = serve_routes({("POST", CHAT): status_route(429, "0")})
    m = connect(s.url, MODEL, retries=2)
    with pytest.raises(EndpointBusy, match="after 2 retries") as e:
        m.generate("Hi", max_new_tokens=8)
    assert len(s.posts()) == 3 and m.engine.stats.retries == 2
    assert "retries=" in e.value.fix


def test_a_retry_after_beyond_the_longest_wait_fails_at_once(serve_routes):
    s = serve_routes({("POST", CHAT): status_route(429, "3600")})
    t0 = time.monotonic()
    with pytest.raises(EndpointBusy, match="3600"):
        connect(s.url, MODEL).generate("Hi", max_new_tokens=8)
    assert time.monotonic() - t0 < 5 and len(s.posts()) == 1


def test_a_loading_server_is_waited_for_when_listing_models(serve_routes):
    loading = status_route(503)  # llama.cpp answers 503 "Loading model" (serving-facts.md §4.2)
    s = serve_routes({("GET", "/v1/models"): sequence(loading, models_route())})
    assert connect(s.url, MODEL, backoff_s=0.05).engine.stats.retries == 1


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_s("2") == 2.0 and retry_after_s(None) is None
    assert retry_after_s("soon") is None
    assert 25 <= retry_after_s(formatdate(time.time() + 30, usegmt=True)) <= 30


# ---- one deadline per request -------------------------------------------------------------------
def test_a_stall_mid_stream_ends_at_the_deadline(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route(GOOD, stall_after=1)})
    m = connect(s.url, MODEL, deadline_s=1.0, timeout=60)
    t0 = time.monotonic()
    with pytest.raises(EndpointTimeout, match="deadline of 1 s"):
        m.generate("Hi", max_new_tokens=8)
    assert time.monotonic() - t0 < 3


def test_a_server_that_never_answers_ends_at_the_deadline(serve_routes):
    s = serve_routes({("POST", CHAT): lambda h: h.server.release.wait(60)})
    m = connect(s.url, MODEL, deadline_s=1.0, timeout=60)
    t0 = time.monotonic()
    with pytest.raises(EndpointTimeout):
        m.generate("Hi", max_new_tokens=8)
    assert time.monotonic() - t0 < 3


def test_the_deadline_includes_retry_waits(serve_routes):
    s = serve_routes({("POST", CHAT): status_route(503, "5")})
    with pytest.raises(EndpointBusy, match="deadline"):
        connect(s.url, MODEL, deadline_s=2.0).generate("Hi", max_new_tokens=8)


def test_stopping_a_stalled_request_returns_what_came(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route(GOOD, stall_after=1)})
    m = connect(s.url, MODEL, deadline_s=60)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    g = m.generate("Hi", max_new_tokens=8, stop_event=stop)
    assert g.text == "Par" and g.finish_reason == "stopped" and time.monotonic() - t0 < 3


# ---- connections --------------------------------------------------------------------------------
def test_keep_alive_reuses_one_connection_counted_by_the_server(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route(GOOD)})
    m = connect(s.url, MODEL)
    for _ in range(3):
        assert m.generate("Hi", max_new_tokens=8).text == "Paris."
    assert s.connections == 1 and m.engine.stats.connections == 1  # /v1/models + 3 chats


def test_keep_alive_off_opens_a_connection_per_request(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route(GOOD)})
    m = connect(s.url, MODEL, keep_alive=False)
    for _ in range(3):
        m.generate("Hi", max_new_tokens=8)
    assert s.connections == 4 and m.engine.stats.connections == 4


def test_llamacpp_closing_after_a_stream_is_handled_by_reconnecting(serve_routes):
    s = serve_routes({("POST", CHAT): stream_route(GOOD, llamacpp_close=True)})
    m = connect(s.url, MODEL)
    for _ in range(3):
        assert m.generate("Hi", max_new_tokens=8).text == "Paris."
    assert s.dropped == 2 and m.engine.stats.reconnects == 2
    assert m.engine.stats.failures == 0


# ---- fields only where the server takes them ----------------------------------------------------
def ok_route():
    return stream_route(GOOD)


def owned_by(owner: str):
    return models_route({"object": "list", "data": [{"id": MODEL, "owned_by": owner}]})


@pytest.mark.parametrize("owner", ["llamacpp", "vllm"])
def test_ignore_eos_and_top_k_go_to_llamacpp_and_vllm(serve_routes, owner):
    s = serve_routes({("GET", "/v1/models"): owned_by(owner), ("POST", CHAT): stream_route(GOOD)})
    connect(s.url, MODEL).generate("Hi", max_new_tokens=3, min_new_tokens=3, top_k=5)
    body = s.posts()[-1]
    assert body["ignore_eos"] is True and body["top_k"] == 5


def test_other_servers_get_only_openai_fields_and_a_warning(serve_routes):
    s = serve_routes(
        {("GET", "/v1/models"): owned_by("system"), ("POST", CHAT): stream_route(GOOD)}
    )
    m = connect(s.url, MODEL)
    with pytest.warns(UserWarning, match="ignore_eos"):
        m.generate("Hi", max_new_tokens=3, min_new_tokens=3, top_k=5)
    assert "ignore_eos" not in s.posts()[-1] and "top_k" not in s.posts()[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per engine, not per request
        m.generate("Hi", max_new_tokens=3, min_new_tokens=3, top_k=5)


def test_a_server_header_or_the_setting_says_what_the_server_is(serve_routes):
    s = serve_routes(
        {("GET", "/v1/models"): owned_by("system"), ("POST", CHAT): stream_route(GOOD)}
    )
    connect(s.url, MODEL, server="vllm").generate("Hi", max_new_tokens=3, min_new_tokens=3)
    assert s.posts()[-1]["ignore_eos"] is True
    assert OpenAIEngine("https://api.together.xyz/v1", MODEL).server == "together"


# ---- Ollama's native stream ---------------------------------------------------------------------
def ndjson_route(lines: list[dict]):
    frames = [json.dumps(x).encode() + b"\n" for x in lines]
    return stream_route(frames)


def test_ollama_error_line_and_missing_done_raise(serve_routes):
    tags = ("GET", "/api/tags"), models_route({"models": [{"name": "m:latest"}]})
    part = {"message": {"role": "assistant", "content": "Hi"}, "done": False}
    s = serve_routes({tags[0]: tags[1], ("POST", "/api/chat"): ndjson_route([part])})
    with pytest.raises(EndpointStreamError, match="ended before"):
        connect(s.url, "m", api="ollama").generate("Hi", max_new_tokens=4)
    s = serve_routes(
        {tags[0]: tags[1], ("POST", "/api/chat"): ndjson_route([part, {"error": "out of memory"}])}
    )
    with pytest.raises(EndpointStreamError, match="out of memory"):
        connect(s.url, "m", api="ollama").generate("Hi", max_new_tokens=4)


# ---- settings -----------------------------------------------------------------------------------
def test_settings_are_checked_and_named():
    with pytest.raises(InvalidSetting, match="retries"):
        EndpointSettings(retries=-1)
    with pytest.raises(InvalidSetting, match="server"):
        EndpointSettings(server="triton")
    with pytest.raises(InvalidSetting, match="deadline_s"):
        connect("http://127.0.0.1:9", MODEL, check=False, deadlin_s=3)
    e = connect("http://127.0.0.1:9", MODEL, check=False, timeout=7, retries=1).engine
    assert (e.settings.timeout, e.settings.retries, e.timeout) == (7, 1, 7)


# ---- the real llama.cpp server (the deploy extra's xllamacpp; conftest's `server` fixture)
def test_llamacpp_closing_after_each_stream_costs_no_request(server):
    """Measured quirk: llama.cpp's server closes the connection right after each streamed answer
    (while saying `Keep-Alive: timeout=5`); every request still succeeds, with exactly N tokens
    (it is recognised as llama.cpp from /v1/models, so ignore_eos is sent)."""
    m = server.connect()
    assert m.engine.server == "llama.cpp"
    before = m.engine.stats
    for _ in range(4):
        assert m.generate("Name a colour.", max_new_tokens=5, min_new_tokens=5).new_tokens == 5
    after = m.engine.stats
    assert after.failures == before.failures and after.requests == before.requests + 4
    # one connection per stream: the server closed each after its answer
    assert after.connections - before.connections >= 3
