"""The room's board: a small HTTP service beside the room's model server where learners post their
results and votes with the room token, so a room needs no shared folder (Binder, laptops), and
where the educator publishes the blind arena's rounds (computed once for the room).

    with start_board(folder, token) as board:      # serve_room() starts one on the model port + 1
        ...                                         # POST /results, GET /results, POST /votes, …

`POST /<kind>` takes one JSON record (checked field by field: 400 with the reason, 413 past
max_body(kind) bytes, 401 without the token); `GET /<kind>` answers {"records": [...], "skipped":
[{"line": n, "why": ...}]}. Each kind is one JSON-lines file in `folder`, appended under a lock,
never through a symlink (`lines`). Built on the standard library's ThreadingHTTPServer.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..core import tasks, validate
from ..core.errors import InvalidSetting
from ..core.paths import cache_dir
from ..measure.rounds import check_round
from ..serving.server import HOST, bindable_host, reach_address
from .lines import (
    RecordRejected,
    SymlinkRefused,
    append_line,
    ensure_folder,
    finite,
    parse,
    read_lines,
    refuse_link,
)

MAX_BODY = 16 * 1024  # bytes of one posted record: a result is ~400
MAX_ROUND_BODY = 256 * 1024  # a round: 8 contenders × 20 prompts of answers fit with room to spare
DRAIN_MAX = 8 * 1024 * 1024  # a refused body up to this is read and dropped: its sender hears why
POLL_S = 0.05  # how often the serving loop looks at stop()


@dataclass(frozen=True)
class Field:
    """One field of a record: its JSON type, whether it must be there, and its bounds."""

    kind: str  # "text" | "number" | "count" | "list" | "object" (checked whole by DEEP_CHECKS)
    required: bool = False
    max_len: int = 100
    choices: tuple[str, ...] = ()


FIELDS: dict[str, dict[str, Field]] = {
    "results": {
        "name": Field("text", True, 40),
        "model": Field("text", True, 200),
        "scheme": Field("text", max_len=60),
        "device": Field("text", True, 40),
        "ttft_s": Field("number"),
        "decode_tokens_per_s": Field("number", True),
        "prompt_tokens": Field("count"),
        "new_tokens": Field("count"),
        "peak_memory_bytes": Field("number"),
        "peak_memory_kind": Field("text", max_len=60),
        "bandwidth_bytes_s": Field("number"),
        "cpu": Field("text", max_len=200),
    },
    "votes": {
        "pair_id": Field("text", True, 100),
        "a": Field("text", True, 200),
        "b": Field("text", True, 200),
        "winner": Field("text", True, 3, ("a", "b", "tie")),
        "voter": Field("text", True, 40),
    },
    "rounds": {
        "name": Field("text", True, 60),
        "answers": Field("list", True),
        "quality": Field("object"),
    },
}
DEEP_CHECKS = {"rounds": check_round}  # a kind's nested fields, checked after the flat ones
STAMP = "time"  # the board's own field: when it stored the record


def max_body(kind: str) -> int:
    """The most bytes one posted record of `kind` may have."""
    return MAX_ROUND_BODY if kind == "rounds" else MAX_BODY


def check_record(kind: str, record: dict, stored: bool = False) -> dict:
    """`record` if it has `kind`'s shape (known fields, types, bounds), else RecordRejected saying
    which field is wrong. `stored`: a line read back, which carries the board's time stamp."""
    fields = FIELDS[kind]
    extra = set(record) - set(fields) - ({STAMP} if stored else set())
    if extra:
        raise RecordRejected(f"unknown field(s) {sorted(extra)} for {kind}",
                             f"A {kind} record has only {sorted(fields)}.")  # fmt: skip
    for key, f in fields.items():
        value = record.get(key)
        if value is None:
            if f.required:
                raise RecordRejected(f"{key} is missing", f"Give {key} ({f.kind}).")
            continue
        why = _wrong(value, f)
        if why:
            raise RecordRejected(f"{key} {why}", f"Give {key} as {f.kind}.")
    deep = DEEP_CHECKS.get(kind)
    why = deep(record) if deep else None
    if why:
        raise RecordRejected(why, f"Post a {kind} record as the kit makes it.")
    if stored and not finite(record.get(STAMP)):
        raise RecordRejected(f"{STAMP} is missing", "Only the board writes these files.")
    return record


def _wrong(value, f: Field) -> str | None:
    if f.kind in ("list", "object"):
        return (
            None if isinstance(value, list if f.kind == "list" else dict) else f"must be a {f.kind}"
        )
    if f.kind == "text":
        if not isinstance(value, str) or not value.strip():
            return "must be non-empty text"
        if len(value) > f.max_len:
            return f"is longer than {f.max_len} characters"
        if f.choices and value not in f.choices:
            return f"must be one of {list(f.choices)}"
        return None
    if not finite(value) or value < 0:
        return "must be a number ≥ 0"
    if f.kind == "count" and value != int(value):
        return "must be a whole number"
    return None


class Store:
    """The board's files: one JSON-lines file per kind in `folder`, appended under one lock."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def add(self, kind: str, record: dict) -> dict:
        stored = {**check_record(kind, record), STAMP: time.time()}
        with self._lock:
            append_line(self.folder, f"{kind}.jsonl", stored)
        return stored

    def check(self) -> None:
        """Make the folder (0700) and refuse a symlinked folder or file now, not at a post."""
        ensure_folder(self.folder)
        for kind in FIELDS:
            refuse_link(self.folder / f"{kind}.jsonl")

    def read(self, kind: str) -> dict:
        records, skipped = read_lines(
            self.folder, f"{kind}.jsonl", lambda r: check_record(kind, r, stored=True)
        )
        return {"records": records, "skipped": skipped}


class _Handler(BaseHTTPRequestHandler):
    server: _BoardServer
    protocol_version = "HTTP/1.1"
    timeout = 10  # s a client may take to send its request: a stalled one frees its thread
    body_read = False

    def do_GET(self) -> None:
        kind = self._kind()
        if not kind:
            return
        try:
            self._send(200, self.server.store.read(kind))
        except SymlinkRefused as e:
            self._error(500, e.message)

    def do_POST(self) -> None:
        kind = self._kind()
        if not kind:
            return
        size = self.headers.get("Content-Length")
        if size is None or not size.isdigit():
            return self._error(411, "send a Content-Length header")
        if int(size) > max_body(kind):
            return self._error(413, f"the record is {int(size)} bytes; at most {max_body(kind)}")
        body = self.rfile.read(int(size))
        self.body_read = True
        try:
            stored = self.server.store.add(kind, parse(body))
        except RecordRejected as e:
            return self._error(400, e.message)
        except SymlinkRefused as e:
            return self._error(500, e.message)
        self._send(201, {"record": stored})

    def _drop_body(self) -> None:
        """Read and discard a refused POST's body: answering while the client still sends it
        breaks its pipe, and it would see a dead board instead of the reason."""
        size = self.headers.get("Content-Length", "")
        if self.command != "POST" or self.body_read or not size.isdigit():
            return
        left = int(size) if int(size) <= DRAIN_MAX else 0
        while left > 0:
            chunk = self.rfile.read(min(left, 64 * 1024))
            if not chunk:
                return
            left -= len(chunk)

    def _kind(self) -> str | None:
        """The path's kind once the token is right; answers the error itself otherwise."""
        sent = self.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {self.server.token}".encode()):
            self._error(401, "missing or wrong room token (Authorization: Bearer …)")
            return None
        kind = self.path.split("?", 1)[0].strip("/")
        if kind not in FIELDS:
            self._error(404, f"no such record kind {kind!r}; the board keeps {list(FIELDS)}")
            return None
        return kind

    def _error(self, status: int, why: str) -> None:
        self._drop_body()
        self.close_connection = True  # a body may be left unread: this connection cannot go on
        self._send(status, {"error": why})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="llamalab room"')
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass  # quiet: a room posts often, and the educator's terminal shows the model server


class _BoardServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a room posting at once (the default 5 resets the sixth connection)

    def __init__(self, address, store: Store, token: str):
        self.store, self.token = store, token
        super().__init__(address, _Handler)


@dataclass
class Board:
    """The running board: its URL, folder and serving Task. Stopped by stop() or the `with` block
    (and at interpreter exit with every other Task)."""

    url: str
    folder: Path
    port: int
    task: tasks.Task = field(repr=False)
    _server: _BoardServer = field(repr=False)

    def stop(self) -> None:
        self.task.stop()
        self.task.join(5 * POLL_S + 5)
        self._server.server_close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def board_dir() -> Path:
    """Where a room's board keeps its files unless told: the kit's cache, folder room-board."""
    return cache_dir() / "room-board"


def start_board(folder=None, *, token: str, host: str = HOST, port: int = 0) -> Board:
    """Serve the board on `host`:`port` (0: a free port) with `token`, its files in `folder`
    (None: board_dir()). The folder must not be a symlink; it is created 0700 if missing."""
    validate.text("token", token)
    host = bindable_host(host)
    validate.integer("port", port, lo=0, hi=65535)
    store = Store(Path(folder) if folder is not None else board_dir())
    store.check()
    try:
        server = _BoardServer((host, port), store, token)
    except OSError as e:
        raise InvalidSetting(
            f"The room's board cannot listen on {host}:{port}: {e.strerror}.",
            "Pick another port (--board-port) or stop what uses it.",
        ) from None
    server.timeout = POLL_S
    bound = server.server_address[1]

    def serve(task: tasks.Task) -> None:
        while not task.stopping:
            server.handle_request()

    task = tasks.start_thread(serve, label=f"room board :{bound}")
    return Board(f"http://{reach_address(host)}:{bound}", store.folder, bound, task, server)
