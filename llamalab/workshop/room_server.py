"""One model server for the room: the kit's llama.cpp server (`llamalab.serve()`), a room token, and
parallel slots sized from the estimate and this machine; it prints the one line learners set.

    with llamalab.workshop.serve_room(host="0.0.0.0") as room:   # `llamalab room serve --host …`
        print(room.instructions())      # LLAMALAB_ROOM=http://192.0.2.2:PORT#token=…

Learners then run `llamalab.use_room("<that URL>")` (or set LLAMALAB_ROOM) and `llamalab.load()`
returns the served model: their kernels never load a model or torch. Beside it runs the room's
board (`board.start_board`, the model port + 1, the same token): learners' results and votes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from .. import catalog
from ..core import validate
from ..core.errors import InvalidSetting
from ..core.hardware import hardware
from ..core.units import both
from ..plan.estimator import estimate
from ..runtime.room import Room
from ..serving.server import ANY_HOST, HOST, Server, serve
from .board import Board, start_board

SLOTS_PER_CORE = 4  # CPU: a core decodes a few sequences per step for little more than one
MEMORY_SHARE = 0.8  # of the memory available now: the rest for learners' kernels, the OS, spikes


@dataclass(frozen=True)
class SlotSizing:
    """How many parallel slots the room's server opens, and the arithmetic behind it."""

    slots: int
    by_memory: int
    by_compute: int | None  # None on a GPU: memory is its limit at these sizes
    learners: int
    kv_slot_bytes: int
    fixed_bytes: int
    budget_bytes: int
    cores: int
    device: str
    reasons: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return "\n".join(self.reasons)


def size_slots(
    model="default",
    scheme: str = "q8_0",
    context: int = 1024,
    learners: int = 25,
    device: str = "auto",
    threads: int | None = None,
) -> SlotSizing:
    """Parallel slots for a room: the fewest of what the memory holds (each slot keeps a KV cache
    of `context` tokens), what the CPU's cores decode together (`threads` of them when the server
    is given fewer), and the learners."""
    validate.integer("learners", learners, lo=1, hi=10_000)
    validate.integer("context", context, lo=64)
    hw = hardware()
    device = hw.default_device if device == "auto" else validate.text("device", device)
    c, s = catalog.card(model), catalog.scheme(scheme, model)
    one = estimate(c, s, context, batch=1, device="cuda" if device.startswith("cuda") else "cpu")
    kv = int(one.breakdown["kv_cache"])
    fixed = one.total_bytes - kv
    budget = int(hw.budget_bytes(device) * MEMORY_SHARE)
    by_memory = max(0, (budget - fixed) // kv)
    cores = min(hw.cores, threads or hw.cores)
    by_compute = None if device.startswith("cuda") else SLOTS_PER_CORE * cores
    slots = max(1, min(by_memory, by_compute or by_memory, learners))
    reasons = (
        f"KV cache per slot: {kv / 1e6:.1f} MB ({c.name} {s.name}, {context} tokens; "
        f"llamalab.estimate); weights + runtime: {both(fixed)}.",
        f"Memory: {MEMORY_SHARE:.0%} of the {both(hw.budget_bytes(device))} available on "
        f"{device} = {both(budget)}; ({budget / 1e9:.2f} − {fixed / 1e9:.2f} GB) ÷ "
        f"{kv / 1e6:.1f} MB = {by_memory} slots.",
        f"Compute: {SLOTS_PER_CORE} slots per core × {cores} cores = {by_compute} "
        "(past a few sequences per core a CPU's decode step costs as much more as it holds)."
        if by_compute is not None
        else "Compute: a GPU decodes many sequences per step; memory is the limit here.",
        f"Slots = min({by_memory}, {by_compute if by_compute is not None else '—'}, "
        f"{learners} learners) = {slots}: learners past that wait in the server's queue, which "
        "shows in their time to first token.",
    )
    return SlotSizing(slots, by_memory, by_compute, learners, kv, fixed, budget, cores,
                      device, reasons)  # fmt: skip


@dataclass
class RoomServer:
    """The room's running server, its Room (URL + token learners set) and the slot arithmetic.
    Stopped by stop(), the `with` block, or at interpreter exit."""

    server: Server
    room: Room
    sizing: SlotSizing
    host: str
    board: Board

    def instructions(self) -> str:
        """What to tell the room, with the arithmetic and, for a network bind, a loud warning."""
        lines = [
            f"Room server: {self.server.model_id} ({self.server.scheme or 'gguf'}) on "
            f"{self.server.url}, pid {self.server.pid}, {self.server.threads} threads, "
            f"{self.sizing.slots} slots of {self.server.settings.context} tokens.",
            *(f"  {r}" for r in self.sizing.reasons),
        ]
        if self.host != HOST:
            lines.append(
                f"!! LISTENING ON {self.host}: EVERY MACHINE ON THIS NETWORK CAN REACH PORT "
                f"{self.server.port}. Only the token keeps others out: share it with the room only."
            )
        lines.append(
            f"Room board (learners' results and votes): {self.room.board_url}, same token; "
            f"records in {self.board.folder} (one JSON-lines file per kind)."
        )
        where = self.room.line().split("=", 1)[1]
        lines += ["Learners set (in their environment):", self.room.line(),
                  f'  or in a notebook: llamalab.use_room("{where}")']  # fmt: skip
        return "\n".join(lines)

    def stop(self) -> None:
        self.board.stop()
        self.server.stop()

    def __enter__(self) -> RoomServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_room(
    model="default",
    scheme: str = "q8_0",
    *,
    host: str = HOST,
    port: int = 0,
    slots: int | None = None,
    context: int = 1024,
    learners: int = 25,
    token: str | None = None,
    board_dir=None,
    board_port: int | None = None,
    **serve_options,
) -> RoomServer:
    """Start the room's model server: llama.cpp's server on `host` (127.0.0.1 unless the educator
    names another address of this machine or 0.0.0.0), a room token (random unless given),
    `slots` parallel slots (None: sized by size_slots from the estimate, memory and cores), and
    the room's board on the same host (port `board_port`, default the model server's + 1; its
    files in `board_dir`, default `board.board_dir()`). `serve_options`: any other ServeSettings
    field (threads, start_timeout, …)."""
    sizing = size_slots(model, scheme, context, learners, threads=serve_options.get("threads"))
    if slots is not None:
        validate.integer("slots", slots, lo=1, hi=256)
        sizing = _chosen(sizing, slots)
    server = serve(model, scheme=scheme, host=host, port=port, parallel=sizing.slots,
                   context=context, api_key=token, **serve_options)  # fmt: skip
    try:
        board = _start_board(board_dir, server, host, board_port)
    except BaseException:
        server.stop()
        raise
    room = Room(f"http://{room_address(host)}:{server.port}", server.api_key, board.port)
    return RoomServer(server=server, room=room, sizing=sizing, host=host, board=board)


def _start_board(folder, server: Server, host: str, port: int | None) -> Board:
    """The board on `port`, or on the model server's port + 1 — a free port if that one is taken
    (the room line then says &board=PORT)."""
    if port is not None:
        return start_board(folder, token=server.api_key, host=host, port=port)
    try:
        return start_board(folder, token=server.api_key, host=host, port=server.port + 1)
    except InvalidSetting:
        return start_board(folder, token=server.api_key, host=host, port=0)


def _chosen(sizing: SlotSizing, slots: int) -> SlotSizing:
    from dataclasses import replace

    why = f"Slots = {slots}, as asked (the arithmetic above suggests {sizing.slots})."
    return replace(sizing, slots=slots, reasons=(*sizing.reasons[:-1], why))


def room_address(host: str) -> str:
    """The address learners use: the one bound, or for 0.0.0.0 this machine's first non-loopback
    IPv4 address (127.0.0.1 if it has none)."""
    if host != ANY_HOST:
        return host
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return HOST
