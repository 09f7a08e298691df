"""What the engines that talk to a model server over HTTP share: the URL, the key (read from the
environment at each request, never stored, printed or logged), one kept-alive client, retries, one
deadline per request, and the errors a learner sees. Each wire protocol is its own engine:
`openai.py` (any OpenAI-compatible server) and `ollama.py`.

A failure is never an answer: an error event in a stream, bytes that are not UTF-8, a stream that
ends before the server said it was done, a 429/503 still refused after the retries, a request past
its deadline — each raises one of the kit's `EndpointError`s from `generate()`, so a load test
records it as an error row (`measure/loadtest.py` catches `LlamalabError` per request).
"""

from __future__ import annotations

import difflib
import email.utils
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..core import validate
from ..core.errors import BackendMissing, InvalidSetting, LlamalabError, install_extra
from ..core.settings import setting, with_changes
from .base import Concurrent, Engine, Sampling, Usage, to_messages
from .preview import RequestPreview, redacted_headers


class EndpointError(LlamalabError):
    """A request to a model server failed; the message says how, the fix what to check."""


class EndpointUnreachable(EndpointError):
    pass


class EndpointAuthError(EndpointError):
    pass


class EndpointTimeout(EndpointError):
    pass


class EndpointStreamError(EndpointError):
    """The server broke the stream: an error event, bytes that are not UTF-8 or not JSON,
    or an end before it said it was done."""


class EndpointBusy(EndpointError):
    """The server still answered 429 (rate limit) or 503 (busy, loading) after the retries."""


class UnknownServedModel(EndpointError):
    def __init__(self, model: str, served: list[str], url: str):
        self.model, self.served = model, served
        close = difflib.get_close_matches(model, served, n=3, cutoff=0.3)
        hint = f"Did you mean {', '.join(close)}? " if close else ""
        super().__init__(
            f"The server at {url} does not serve a model called {model!r}.",
            f"{hint}It serves: {', '.join(served) or '(none listed)'}.",
        )


@dataclass(frozen=True)
class ServerTimings:
    """What the server itself reported for the last request (Ollama's durations,
    llama.cpp's timings)."""

    prompt_tokens: int | None = None
    new_tokens: int | None = None
    prompt_s: float | None = None
    decode_s: float | None = None
    total_s: float | None = None


SERVERS = ("auto", "llama.cpp", "vllm", "together", "openai", "generic")


@dataclass(frozen=True)
class EndpointSettings:
    """How the client talks to a model server; `llamalab.connect(...)` takes these as keywords."""

    timeout: float = setting(
        60.0, "Seconds the server may stay silent: to connect, to answer, between streamed pieces."
    )
    deadline_s: float = setting(
        600.0,
        "Seconds one request may take in all — retries and their waits included; past it the "
        "request is ended and raises EndpointTimeout.",
    )
    retries: int = setting(
        3,
        "Times a request is sent again after a retry_statuses answer (429 rate limit, 503 busy "
        "or loading), before any text came; counted in engine.stats.retries.",
    )
    backoff_s: float = setting(
        0.5, "First wait before a retry, doubling each time, unless the server says (Retry-After)."
    )
    max_retry_wait_s: float = setting(
        30.0,
        "Longest wait for one retry; a Retry-After above it ends the request at once "
        "(EndpointBusy).",
    )
    retry_statuses: tuple[int, ...] = setting(
        (429, 503), "HTTP statuses that mean 'try again later' (rate limit, busy, loading)."
    )
    keep_alive: bool = setting(
        True,
        "Reuse connections between requests (no new TCP/TLS handshake in each TTFT); a connection "
        "the server closed meanwhile (llama.cpp's does after each stream) is replaced at once.",
    )
    server: str = setting(
        "auto",
        "What answers at base_url: 'llama.cpp', 'vllm', 'together', 'openai', 'generic', or "
        "'auto' (the host, /v1/models' owned_by, the Server header). Fields beyond OpenAI's API "
        "(ignore_eos, top_k) go only to servers known to take them.",
    )

    def __post_init__(self):
        validate.number("timeout", self.timeout, lo=0.01)
        validate.number("deadline_s", self.deadline_s, lo=0.01)
        validate.integer("retries", self.retries, lo=0, hi=100)
        validate.number("backoff_s", self.backoff_s, lo=0)
        validate.number("max_retry_wait_s", self.max_retry_wait_s, lo=0)
        object.__setattr__(
            self,
            "retry_statuses",
            tuple(validate.integer("retry_statuses", c, 400, 599) for c in self.retry_statuses),
        )
        validate.flag("keep_alive", self.keep_alive)
        validate.choice("server", self.server, SERVERS)


@dataclass(frozen=True)
class EndpointStats:
    """What an engine's client has done so far (`engine.stats`); diff two to count a span."""

    requests: int = 0  # generate() calls
    retries: int = 0  # re-sends after a retry_statuses answer
    reconnects: int = 0  # re-sends on a new connection: a kept-alive one had been closed
    connections: int = 0  # TCP connections opened
    failures: int = 0  # generate() calls that raised


def httpx():
    try:
        import httpx
    except ImportError:
        raise BackendMissing(
            "httpx", install_extra("deploy"), "the model-server client needs it"
        ) from None
    return httpx


def check_url(base_url: str) -> str:
    url = str(base_url).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidSetting(
            f"base_url={base_url!r} is not an http(s) URL.",
            "Pass e.g. 'http://127.0.0.1:8080' (llama.cpp) or 'http://localhost:11434' (Ollama).",
        )
    return url


# Idle kept-alive connections are dropped before servers drop them: cpp-httplib (llama.cpp's
# server) answers `Keep-Alive: timeout=5, max=100` (seen on xllamacpp 2026.9.11063's responses),
# and uvicorn's default is 5 s too; reusing one at the server's limit races its close.
KEEPALIVE_EXPIRY_S = 4.0
POLL_S = 0.05  # how often the watchdog looks at running requests


class HttpEngine(Engine, Concurrent):
    """A model on a server: takes chat messages (no tokenizer here), streams text pieces, reports
    the server's token counts as Usage; no local memory to measure. Subclasses give the wire
    protocol: `CHAT_PATH`, `request_body()`, `stream_parser()` (or `parse_line()`) and
    `served_models()`."""

    remote = True
    streams_text = True
    CHAT_PATH = ""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout: float | None = None,
        context_length: int = 0,
        *,
        settings: EndpointSettings | None = None,
        key: Callable[[], str] | None = None,
        **overrides,
    ):
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise EndpointAuthError(
                f"The environment variable {api_key_env} (the API key) is not set.",
                f"Set it before starting Jupyter (export {api_key_env}=...), or in the notebook "
                f"with os.environ[{api_key_env!r}] = getpass.getpass().",
            )
        if timeout is not None:
            overrides["timeout"] = timeout
        self.settings = with_changes(settings or EndpointSettings(), **overrides)
        self.base, self.model_id, self.api_key_env = (
            self.api_base(check_url(base_url)),
            model,
            api_key_env,
        )
        self.context_length = context_length or 1 << 30  # the server enforces its own context
        self.last_timings = ServerTimings()
        self._key = key  # a server this process started: its key, held in memory only
        self._client = None
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(vars(EndpointStats()), 0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r}, model={self.model_id!r})"

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    @staticmethod
    def api_base(url: str) -> str:
        """The URL requests go under."""
        return url

    @property
    def is_chat(self) -> bool:
        return True

    @property
    def stats(self) -> EndpointStats:
        """Requests, retries, reconnects, connections opened and failures so far."""
        with self._lock:
            return EndpointStats(**self._counts)

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self._counts[what] += n

    # ---- the wire protocol --------------------------------------------------------------------
    def request_body(self, messages: list[dict], s: Sampling) -> dict:
        raise NotImplementedError

    def parse_line(self, line: str) -> dict | None:
        """One streamed line → {"text", "usage", "timings", "done", "finished"} (None: nothing)."""
        raise NotImplementedError

    def stream_parser(self) -> Callable[[str], dict | None]:
        """A fresh line parser for one response (protocols whose events span lines keep state)."""
        return self.parse_line

    def served_models(self) -> list[str]:
        """Model ids the server lists."""
        raise NotImplementedError

    def serves(self, served: list[str]) -> bool:
        return self.model_id in served

    def saw_response(self, r) -> None:
        """Hook: a response's headers arrived (an engine may learn what server it is)."""

    # ---- a request shown, not sent ---------------------------------------------------------------
    def request_preview(
        self, prompt, sampling: Sampling | None = None, system: str | None = None
    ) -> RequestPreview:
        """The chat request `generate(prompt, ...)` sends, built by the same code (URL, body) but
        not sent; the key is never read: its header says where it comes from."""
        body = self.request_body(to_messages(prompt, system), sampling or Sampling())
        headers = redacted_headers(self.api_key_env, own_key=self._key is not None)
        return RequestPreview("POST", self.base + self.CHAT_PATH, headers, body)

    # ---- HTTP ------------------------------------------------------------------------------------
    def headers(self) -> dict:
        key = self._key() if self._key else None
        key = key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def client(self, timeout: float | None = None):
        """The engine's one HTTP client (thread-safe, shared by concurrent requests), keeping
        connections alive when `settings.keep_alive`. Timeouts are set per request."""
        with self._lock:
            if self._client is None:
                h = httpx()
                keep = 64 if self.settings.keep_alive else 0
                self._client = h.Client(
                    limits=h.Limits(
                        max_connections=None,
                        max_keepalive_connections=keep,
                        keepalive_expiry=KEEPALIVE_EXPIRY_S,
                    ),
                )
            return self._client

    def unload(self) -> None:
        """Close the client's connections (a later request opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def get_json(self, path: str):
        call = Call(self.settings.deadline_s)
        return self._json(self.send("GET", path, call, read_timeout=min(self.timeout, 10.0)), call)

    def post_json(self, path: str, body: dict):
        """POST `body` and return the JSON answer (one request, not streamed; retried and
        bounded by the deadline like every request). A server says nothing until the whole
        answer is ready, so the read waits up to the deadline, not `timeout`."""
        self.count("requests")
        call = Call(self.settings.deadline_s)
        try:
            with WATCHDOG.watching(call):
                r = self.send("POST", path, call, body, read_timeout=self.settings.deadline_s)
                return self._json(r, call)
        except BaseException:
            self.count("failures")
            raise

    def _json(self, r, call: Call):
        try:
            with self.errors(call):
                r.read()
        finally:
            r.close()
        try:
            return r.json()
        except ValueError:
            raise EndpointError(
                f"{r.request.url} did not answer JSON: {r.text[:120]!r}.",
                "Check base_url: it should be the API's root (an OpenAI-compatible server answers "
                "under /v1, Ollama at its root).",
            ) from None

    def check_model(self) -> None:
        """Raise UnknownServedModel unless the server lists this model id
        (servers that list none pass)."""
        served = self.served_models()
        if served and not self.serves(served):
            raise UnknownServedModel(self.model_id, served, self.base)

    @contextmanager
    def errors(self, call: Call | None = None):
        """Transport failures (refused, timed out, broken off) as the kit's errors; one the
        watchdog caused (the caller stopped, the deadline passed) as what it means."""
        h = httpx()
        try:
            yield
        except h.ConnectError as e:
            raise EndpointUnreachable(
                f"Cannot connect to {self.base}: {e}.",
                "Check the URL and port and that the server is running (with "
                "llamalab.serve(), use server.url).",
            ) from None
        except h.TimeoutException:
            if call is not None and call.expired():
                raise call.timeout_error(self.base) from None
            raise EndpointTimeout(
                f"{self.base} stayed silent for {self.timeout:g} s.",
                "Raise timeout=, lower max_new_tokens, or check that the server is not overloaded.",
            ) from None
        except h.TransportError as e:
            if call is not None and call.reason == "deadline":
                raise call.timeout_error(self.base) from None
            if call is not None and call.reason == "stop":
                raise Stopped from None
            raise EndpointError(
                f"The connection to {self.base} failed: {e!r}.",
                "The server may have stopped; check its log (server.tail()).",
            ) from None

    def send(self, method: str, path: str, call: Call, body=None, read_timeout=None):
        """The open response to one request (headers read, body not yet), after the retries:
        a `retry_statuses` answer is sent again after a backoff or its Retry-After; a kept-alive
        connection the server had closed is replaced once, at once. Raises the kit's errors;
        `Stopped` when the caller stopped meanwhile."""
        s, attempt, reconnected = self.settings, 0, False
        while True:
            r = self._send_once(method, path, call, body, read_timeout, reconnected)
            if r is None:  # the server had closed the kept-alive connection
                reconnected = True
                self.count("reconnects")
                continue
            self.saw_response(r)
            if r.status_code not in s.retry_statuses or attempt >= s.retries:
                try:
                    check_status(r, self.base, self.api_key_env, attempt)
                except BaseException:
                    r.close()
                    raise
                return r
            wait = retry_wait(r, attempt, s, call, self.base)
            r.close()
            attempt += 1
            self.count("retries")
            if call.sleep(wait):
                raise Stopped

    def _send_once(self, method, path, call, body, read_timeout, reconnected):
        """One try; None when a reused connection turned out closed (and not yet replaced)."""
        h = httpx()
        call.check(self.base)
        left = call.left()
        t = min(read_timeout or self.timeout, left)
        request = self.client().build_request(
            method,
            path if path.startswith(("http://", "https://")) else self.base + path,
            json=body,
            headers=self.headers(),
            timeout=h.Timeout(t, connect=min(t, 10.0)),
            extensions={"trace": self._trace},
        )
        with self.errors(call):
            try:
                return self.client().send(request, stream=True)
            except (h.RemoteProtocolError, h.ReadError, h.WriteError):
                # llama.cpp's server closes the connection right after a streamed response
                # while its headers say `Keep-Alive: timeout=5, max=100` (measured on xllamacpp
                # 2026.9.11063: FIN within microseconds of the last chunk; research notes,
                # finetune-deploy-course.md "Serving"): a request that raced the close gets
                # "Server disconnected without sending a response". The request never reached
                # the model; send it again on a new connection, once.
                if reconnected:
                    raise
                return None

    def _trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            self.count("connections")

    # ---- Engine ----------------------------------------------------------------------------------
    def encode(self, prompt, system=None, chat=None):
        return to_messages(prompt, system)

    def decode(self, ids) -> str:
        return ""

    def generate(self, messages, sampling: Sampling, on_token, should_stop) -> Usage:
        """Stream one answer. Raises the kit's EndpointError (and subclasses) for every failure;
        returns what came when the caller stopped it (`should_stop`)."""
        self.count("requests")
        call = Call(self.settings.deadline_s, should_stop)
        try:
            with WATCHDOG.watching(call):
                return self._generate(call, self.request_body(messages, sampling), on_token)
        except Stopped:
            return Usage(None, 0)
        except BaseException:
            self.count("failures")
            raise

    def _generate(self, call: Call, body: dict, on_token) -> Usage:
        r = self.send("POST", self.CHAT_PATH, call, body)
        got = Received()
        try:
            call.attach(r)
            with self.errors(call):
                self._read(r, call, got, on_token)
        except Stopped:
            pass
        finally:
            call.detach()
            r.close()
        if not (got.ended or call.stopped_by_caller()):
            raise EndpointStreamError(
                f"The stream from {self.base} ended before the server said it was done "
                f"({got.pieces} pieces received).",
                "The server may have crashed or cut the connection; check its log.",
            )
        usage = got.usage
        return Usage(
            usage.prompt_tokens, usage.new_tokens if usage.new_tokens is not None else got.pieces
        )

    def _read(self, r, call: Call, got: Received, on_token) -> None:
        parse = self.stream_parser()
        for line in utf8_lines(r.iter_bytes(), str(r.request.url)):
            if got.done:  # read to the end of the body, or the connection cannot be reused
                continue
            event = parse(line)
            if event is None:
                continue
            if event.get("text"):
                on_token(event["text"])
                got.pieces += 1
            got.usage = event.get("usage") or got.usage
            self.last_timings = event.get("timings") or self.last_timings
            got.done = bool(event.get("done"))
            got.ended = got.ended or got.done or bool(event.get("finished"))
            if call.should_stop():
                raise Stopped
            call.check(self.base)


@dataclass
class Received:
    """What one stream has delivered so far."""

    pieces: int = 0
    usage: Usage = field(default_factory=Usage)
    ended: bool = False  # the server said it was done ([DONE], a finish reason, Ollama's done)
    done: bool = False  # the stream's last event came ([DONE], Ollama's done)


class Stopped(Exception):
    """Internal: the caller stopped the request (not an error)."""


class Call:
    """One request's deadline and stop check, and the socket the watchdog shuts to end a read
    that would otherwise wait (a shut socket wakes a blocked read at once)."""

    def __init__(self, deadline_s: float, should_stop: Callable[[], bool] | None = None):
        self.deadline_s = deadline_s
        self.ends_at = time.monotonic() + deadline_s
        self._should_stop = should_stop or (lambda: False)
        self.reason: str | None = None  # "deadline" or "stop" once the watchdog ended it
        self._sock = None
        self._woken = threading.Event()
        self._lock = threading.Lock()

    def left(self) -> float:
        return max(self.ends_at - time.monotonic(), 0.001)

    def expired(self) -> bool:
        return time.monotonic() >= self.ends_at

    def should_stop(self) -> bool:
        try:
            return bool(self._should_stop())
        except Exception:
            return False

    def stopped_by_caller(self) -> bool:
        return self.reason == "stop" or self.should_stop()

    def check(self, url: str) -> None:
        """Raise EndpointTimeout past the deadline."""
        if self.expired():
            raise self.timeout_error(url)

    def timeout_error(self, url: str) -> EndpointTimeout:
        return EndpointTimeout(
            f"The request to {url} did not finish within its deadline of {self.deadline_s:g} s.",
            "Raise deadline_s=, lower max_new_tokens, or check that the server is not overloaded.",
        )

    def sleep(self, seconds: float) -> bool:
        """Wait before a retry; True if the caller stopped meanwhile."""
        return self._woken.wait(seconds) and self.reason == "stop"

    def attach(self, response) -> None:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._sock = sock
            if self.reason is not None:
                _shut(sock)

    def detach(self) -> None:
        with self._lock:
            self._sock = None

    def poll(self) -> None:
        """Called by the watchdog: end the request if it is past its deadline or stopped."""
        if self.reason is not None:
            return
        reason = "deadline" if self.expired() else "stop" if self.should_stop() else None
        if reason is None:
            return
        with self._lock:
            self.reason = reason
            _shut(self._sock)
        self._woken.set()


def _shut(sock) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """One daemon thread for the process: polls running requests every POLL_S and ends those
    past their deadline or stopped by their caller — also while a read waits on a silent
    server, which a check between streamed pieces cannot do."""

    def __init__(self):
        self._calls: set[Call] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, call: Call) -> Iterator[Call]:
        with self._cond:
            self._calls.add(call)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="llamalab-http-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        try:
            yield call
        finally:
            with self._cond:
                self._calls.discard(call)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._calls:
                    self._cond.wait()
                calls = list(self._calls)
            for call in calls:
                call.poll()
            time.sleep(POLL_S)


WATCHDOG = Watchdog()

_EOL = re.compile(rb"\r\n|\r|\n")


def utf8_lines(chunks: Iterable[bytes], url: str = "the server") -> Iterator[str]:
    """Lines of a byte stream, decoded strictly: bytes that are not UTF-8 raise
    EndpointStreamError (httpx's own line reader would put U+FFFD in their place, silently).
    A line ends at CR LF, LF or CR (the SSE spec's three)."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = _EOL.split(buf)
        for line in lines:
            yield _decode(line, url)
    if buf:
        yield _decode(buf, url)


def _decode(line: bytes, url: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EndpointStreamError(
            f"{url} sent bytes that are not UTF-8 ({e.reason} at byte {e.start}: "
            f"{line[max(e.start - 20, 0) : e.start + 20]!r}).",
            "The stream is corrupt: check the server, or a proxy in between that re-encodes it.",
        ) from None


def retry_after_s(value: str | None) -> float | None:
    """Retry-After (RFC 9110 §10.2.3): seconds, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def retry_wait(r, attempt: int, s: EndpointSettings, call: Call, url: str) -> float:
    """Seconds to wait before re-sending after `r` (a retry status): the server's Retry-After,
    else backoff_s × 2^attempt capped at max_retry_wait_s. Raises EndpointBusy when the server
    asks for more than max_retry_wait_s or the wait would outlast the deadline."""
    asked = retry_after_s(r.headers.get("retry-after"))
    if asked is not None and asked > s.max_retry_wait_s:
        r.close()
        raise EndpointBusy(
            f"{url} answered {r.status_code} and asks to retry after {asked:g} s, more than "
            f"max_retry_wait_s={s.max_retry_wait_s:g}.",
            "Wait and try again, raise max_retry_wait_s=, or send fewer requests at once.",
        )
    wait = asked if asked is not None else min(s.backoff_s * 2**attempt, s.max_retry_wait_s)
    if wait >= call.left():
        r.close()
        raise EndpointBusy(
            f"{url} answered {r.status_code}; waiting {wait:g} s to retry would pass the "
            f"request's deadline ({call.deadline_s:g} s).",
            "Raise deadline_s=, or send fewer requests at once.",
        )
    return wait


def check_status(r, url: str, api_key_env: str | None, retried: int = 0) -> None:
    """Raise the kit's error for a 401/403, 404, a 429/503 left after `retried` retries, or any
    other failure status (the body is read first)."""
    if r.status_code < 400:
        return
    detail = _error_detail(r)
    if r.status_code in (401, 403):
        how = (
            f"Check the key in the environment variable {api_key_env}."
            if api_key_env
            else "This server needs an API key: pass api_key_env='NAME_OF_THE_VARIABLE' holding it."
        )
        raise EndpointAuthError(
            f"{url} refused the request ({r.status_code}: missing or wrong API key).", how
        )
    if r.status_code == 404:
        raise EndpointError(
            f"{r.request.url} was not found (404) — not an OpenAI-compatible API at this URL, "
            f"or an unknown model. {detail}",
            "Check base_url (servers answer under /v1) and the model id (served_models()).",
        )
    if r.status_code in (429, 503):
        raise EndpointBusy(
            f"{url} answered {r.status_code} ({'rate limit' if r.status_code == 429 else 'busy'}"
            f") after {retried} retries: {detail}",
            "Send fewer requests at once, or raise retries= / deadline_s=.",
        )
    raise EndpointError(
        f"{url} answered {r.status_code}: {detail}", "Check the request and the server's log."
    )


def _error_detail(r) -> str:
    """The server's own words: an OpenAI-style {"error": {"message"}} body, else its start."""
    try:
        r.read()
        body = r.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    except Exception:
        pass
    try:
        return r.text[:300]
    except Exception:
        return ""
