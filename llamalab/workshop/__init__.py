"""Workshop mode: dashboards for a room, the room's shared results, an offline bundle.

llamalab workshop room --results /shared/room      # Voilà on 127.0.0.1 with a token
llamalab room serve --host 0.0.0.0                  # one model server for the room
llamalab room hub --memory 2G --cpus 1              # the room's JupyterHub on this machine
llamalab room round --schemes f16 q4_k_m            # the blind arena's round, once, on the board
llamalab bundle --models default --out /media/usb   # course + wheelhouse + models + MANIFEST
llamalab workshop check --room URL#token=… --learners 25   # is the room ready? (exit 0 if so)
"""

from .board import Board, start_board
from .check import Check, check_room
from .hub import Hub, serve_hub
from .offline import bundle, verify_bundle
from .room import (
    RoomSpread,
    destination,
    latest_local,
    record,
    room_dir,
    room_spread,
    room_table,
    skipped_note,
)
from .room_server import RoomServer, SlotSizing, serve_room, size_slots
from .rounds import publish_round, room_round
from .serve import dashboards, voila_command
from .votes import BoardVotes, FileVotes, MemoryVotes, votes_store

__all__ = [
    "BoardVotes",
    "Check",
    "FileVotes",
    "MemoryVotes",
    "Board",
    "Hub",
    "RoomServer",
    "RoomSpread",
    "SlotSizing",
    "bundle",
    "check_room",
    "dashboards",
    "destination",
    "latest_local",
    "record",
    "publish_round",
    "room_dir",
    "room_round",
    "room_spread",
    "room_table",
    "serve_hub",
    "serve_room",
    "size_slots",
    "skipped_note",
    "start_board",
    "verify_bundle",
    "voila_command",
    "votes_store",
]
