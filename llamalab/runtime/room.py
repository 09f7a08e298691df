"""The room's model: one llama.cpp server an educator starts (`llamalab room serve`) that every
learner's notebook uses instead of loading a model of its own.

    llamalab.use_room("http://192.0.2.2:8080#token=…")   # or set LLAMALAB_ROOM to that line
    m = llamalab.load()          # the room's served model (a connect()-ed LoadedModel, no torch)

Only a load() that names neither model nor scheme goes to the room; `load("default", "q8_0")`
still loads locally. The token stays in this process's memory, never in os.environ.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..core.errors import LlamalabError
from ..engines.http import EndpointAuthError, EndpointError
from ..engines.openai import OpenAIEngine
from .loaded import LoadedModel
from .remote import connect

ENV = "LLAMALAB_ROOM"  # "http://HOST:PORT#token=TOKEN", what `llamalab room serve` prints
SERVED_NOTE = (
    "This notebook's model is the room's: served by {url}, not loaded here. generate() goes over "
    "the network; TTFT and tokens/s include it and are shared with the room; memory is the "
    "server's (absent here). load('default', 'q8_0') loads one locally instead."
)


class RoomError(LlamalabError):
    """The room's server is not set up right, or does not answer."""


@dataclass(frozen=True)
class Room:
    """Where the room's server is, its token (hidden from repr) and its board's port (None: the
    model server's port + 1)."""

    url: str
    token: str = field(repr=False)
    board_port: int | None = None

    @property
    def board_url(self) -> str:
        """The room's board (results and votes): same host, its own port."""
        base = urlsplit(self.url)
        return f"{base.scheme}://{base.hostname}:{self.board_port or (base.port or 0) + 1}"

    def line(self) -> str:
        """What learners set: LLAMALAB_ROOM=URL#token=TOKEN (&board=PORT when not port + 1)."""
        default = (urlsplit(self.url).port or 0) + 1
        board = f"&board={self.board_port}" if self.board_port not in (None, default) else ""
        return f"{ENV}={self.url}#token={self.token}{board}"


_state: dict = {"room": None, "announced": False}


def parse_room(url: str, token: str | None = None) -> Room:
    """A Room from `url` (http://HOST:PORT, its token after `#token=` unless given apart)."""
    if not isinstance(url, str) or not url.strip():
        raise RoomError(
            f"The room URL {url!r} is empty.",
            f"Use the line `llamalab room serve` printed: {ENV}=http://HOST:PORT#token=…",
        )
    base, _, fragment = url.strip().partition("#")
    given = dict(p.partition("=")[::2] for p in fragment.split("&") if p)
    token = token or given.get("token")
    board = given.get("board")
    if board is not None and not (board.isdigit() and 0 < int(board) < 65536):
        raise RoomError(
            f"The room URL's board port {board!r} is not a port number.",
            "Copy the whole line `llamalab room serve` printed.",
        )
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
        raise RoomError(
            f"The room URL {base!r} is not http://HOST:PORT.",
            f"Copy the whole line `llamalab room serve` printed ({ENV}=http://HOST:PORT#token=…).",
        )
    if not token:
        raise RoomError(
            f"The room URL {base!r} has no token, and the room's server refuses requests "
            "without it.",
            f"Use the whole line the educator shared: {ENV}={base}#token=… "
            "(or use_room(url, token='…')).",
        )
    return Room(f"{parts.scheme}://{parts.hostname}:{parts.port}", token,
                int(board) if board else None)  # fmt: skip


def use_room(url: str | None = None, token: str | None = None, *, check: bool = True) -> Room:
    """Use the room's model server: from here on `llamalab.load()` (no model, no scheme) returns
    the room's served model, not a local one. `url`: what `llamalab room serve` printed (None:
    the LLAMALAB_ROOM environment variable). check: ask the server now (a clear error now,
    not at the first generate()). Then `Playground(llamalab.load())`, `load_test(llamalab.load())`,
    and `Arena(load=...)` / `compare(load=...)` with `load=lambda *a, **k: llamalab.load()` run
    against the room's server."""
    if url is None:
        url = os.environ.get(ENV)
        if not url:
            raise RoomError(
                f"No room given and {ENV} is not set.",
                f"Pass the room line: use_room('http://HOST:PORT#token=…'), or set {ENV}.",
            )
    room = parse_room(url, token)
    if check:
        served_model(room)
    _state["room"], _state["announced"] = room, False
    return room


def leave_room() -> None:
    """Stop using the room: load() loads locally again (LLAMALAB_ROOM aside)."""
    _state["room"], _state["announced"] = None, False


def current_room() -> Room | None:
    """The room in use: the one use_room() set, else LLAMALAB_ROOM's, else None."""
    if _state["room"] is not None:
        return _state["room"]
    value = os.environ.get(ENV)
    return parse_room(value) if value else None


def served_model(room: Room) -> str:
    """The model id the room's server serves; RoomError if it does not answer or refuses."""
    engine = OpenAIEngine(room.url, "", None, 10.0, 0, key=lambda: room.token, retries=0)
    try:
        ids = engine.served_models()
    except EndpointAuthError:
        raise RoomError(
            f"The room's server at {room.url} refused the token.",
            "Copy the room line again: the token changes each time the room server starts.",
        ) from None
    except EndpointError as e:
        raise RoomError(
            f"No room server answers at {room.url} ({e.message}).",
            "Check the URL the educator shared, that the room server still runs, and that this "
            "machine is on the room's network; or load a local model: load('default', 'q8_0').",
        ) from None
    if not ids:
        raise RoomError(f"The server at {room.url} lists no model.", "Ask the educator.")
    return ids[0]


def connect_room(room: Room) -> LoadedModel:
    """The room's served model as a LoadedModel; says once per room that it is served."""
    model = connect(room.url, served_model(room), check=False, key=lambda: room.token)
    if not _state["announced"]:
        print(SERVED_NOTE.format(url=room.url))
        _state["announced"] = True
    return model


def room_model_or_none(explicit: bool) -> LoadedModel | None:
    """The room's model for a load() that names no model or scheme while a room is in use."""
    if explicit:
        return None
    room = current_room()
    return connect_room(room) if room is not None else None


# ---------------------------------------------------------------- the room's board (learner side)

BOARD_KINDS = ("results", "votes", "rounds")  # what the board keeps (workshop.board.FIELDS)
BOARD_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RoomRecords:
    """One kind of the board's records, oldest first, and the stored lines it skipped as malformed
    ({"file", "line", "why"})."""

    records: tuple[dict, ...]
    skipped: tuple[dict, ...]


def post_to_room(kind: str, record: dict, room: Room | None = None) -> dict:
    """Post one record of `kind` ("results", "votes" or "rounds") to the room's board with the room
    token; the record as stored (with the board's `time`). RoomError: no room, refused token, board
    not answering, or the record rejected (with the board's reason)."""
    return _board(kind, room, json.dumps(record).encode())["record"]


def room_records(kind: str, room: Room | None = None) -> RoomRecords:
    """Every record of `kind` on the room's board, and what it skipped as malformed."""
    body = _board(kind, room)
    return RoomRecords(tuple(body["records"]), tuple(body["skipped"]))


def _board(kind: str, room: Room | None, data: bytes | None = None) -> dict:
    import urllib.error
    import urllib.request

    if kind not in BOARD_KINDS:
        raise RoomError(f"The room's board keeps no {kind!r} records.",
                        f"Use one of {', '.join(BOARD_KINDS)}.")  # fmt: skip
    room = room or current_room()
    if room is None:
        raise RoomError(
            "No room is in use, so there is no board to post to or read.",
            f"Run llamalab.use_room('http://HOST:PORT#token=…') with the educator's line, or set "
            f"{ENV}.",
        )
    headers = {"Authorization": f"Bearer {room.token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{room.board_url}/{kind}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=BOARD_TIMEOUT_S) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise _refusal(e, room) from None
    except (OSError, ValueError) as e:  # URLError, refused, reset, timeout; a non-JSON answer
        if data and isinstance(getattr(e, "reason", e), (BrokenPipeError, ConnectionResetError)):
            raise RoomError(
                f"The room's board closed the connection while the record ({len(data)} bytes) "
                f"was being sent ({e}).",
                "A record this size is likely over the board's limit: post less (fewer or shorter "
                "answers); nothing was stored.",
            ) from None
        raise RoomError(
            f"The room's board does not answer at {room.board_url} ({e}).",
            "Check that the room server still runs (the board starts with it) and the room line "
            "(its &board=PORT if the educator's line has one).",
        ) from None


def _refusal(e, room: Room) -> RoomError:
    try:
        why = json.loads(e.read()).get("error", "")
    except (ValueError, AttributeError, OSError):
        why = ""
    if e.code == 401:
        return RoomError(
            f"The room's board at {room.board_url} refused the token.",
            "Copy the room line again: the token changes each time the room server starts.",
        )
    if e.code in (400, 404, 411, 413):
        return RoomError(f"The room's board rejected the record: {why or e.reason}.",
                         "Fix that field and post again; nothing was stored.")  # fmt: skip
    return RoomError(f"The room's board answered {e.code} {e.reason}: {why or 'no reason given'}.",
                     "Show this message to the educator.")  # fmt: skip
