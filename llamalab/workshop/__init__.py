"""Workshop mode: dashboards for a room, the room's shared results, an offline bundle.

llamalab workshop room --results /shared/room      # Voilà on 127.0.0.1 with a token
llamalab room serve --host 0.0.0.0                  # one model server for the room
llamalab bundle --models default --out /media/usb   # wheelhouse + converted/quantized models
"""

from .offline import bundle
from .room import record, room_dir, room_table
from .room_server import RoomServer, SlotSizing, serve_room, size_slots
from .serve import dashboards, voila_command

__all__ = [
    "RoomServer",
    "SlotSizing",
    "bundle",
    "dashboards",
    "record",
    "room_dir",
    "room_table",
    "serve_room",
    "size_slots",
    "voila_command",
]
