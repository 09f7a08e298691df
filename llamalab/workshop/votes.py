"""Where a blind arena's votes go, and where the leaderboard reads them back: the room's board when
a room is in use (every learner's votes pooled), else a JSON-lines file in a folder, else this
kernel's memory (one learner alone). Each store has `add(record)` and `records()`; records that are
not votes are skipped and kept in `.skipped` (with why), never raised.

    store = votes_store()          # the board in a room; MemoryVotes otherwise
    store.add(blind.vote(pair_id, "1", voter="ana"))
    llamalab.bradley_terry(store.records())
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InvalidSetting
from ..measure.ratings import check_vote
from ..runtime.room import current_room, post_to_room, room_records
from .lines import RecordRejected, append_line, read_lines

FILE = "votes.jsonl"


def _checked(record) -> dict:
    reason = check_vote(record)
    if reason:
        raise RecordRejected(f"not a vote: {reason}", 'A vote is {"a", "b", "winner", ...}.')
    return record


class MemoryVotes:
    """Votes kept in this kernel only."""

    where = "this notebook only"

    def __init__(self):
        self._records: list[dict] = []
        self.skipped: list[dict] = []

    def add(self, record: dict) -> dict:
        self._records.append(_refused_or(record))
        return record

    def records(self) -> list[dict]:
        return list(self._records)


class FileVotes:
    """Votes appended as JSON lines to `folder`/votes.jsonl (one write per vote, no symlinks
    followed: `lines`), so several kernels sharing a folder pool their votes."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.where = str(self.folder / FILE)
        self.skipped: list[dict] = []

    def add(self, record: dict) -> dict:
        append_line(self.folder, FILE, _refused_or(record))
        return record

    def records(self) -> list[dict]:
        records, self.skipped = read_lines(self.folder, FILE, _checked)
        return records


class BoardVotes:
    """The room's board (POST /votes, GET /votes with the room token): the whole room's votes.
    A board that does not answer raises RoomError with what to check."""

    where = "the room's board"

    def __init__(self, room=None):
        self.room = room  # None: the room in use when each call is made
        self.skipped: list[dict] = []

    def add(self, record: dict) -> dict:
        return post_to_room("votes", _refused_or(record), self.room)

    def records(self) -> list[dict]:
        got = room_records("votes", self.room)
        self.skipped, kept = list(got.skipped), []
        for n, r in enumerate(got.records, start=1):  # the board checks fields, not a ≠ b
            reason = check_vote(r)
            if reason:
                self.skipped.append({"file": "board", "line": n, "why": reason})
            else:
                kept.append(r)
        return kept


def votes_store(folder=None):
    """BoardVotes when a room is in use (llamalab.use_room or LLAMALAB_ROOM), else FileVotes in
    `folder` when one is given, else MemoryVotes."""
    if current_room() is not None:
        return BoardVotes()
    return FileVotes(folder) if folder is not None else MemoryVotes()


def _refused_or(record) -> dict:
    """`record` if it is a vote, else InvalidSetting saying why (nothing is stored)."""
    reason = check_vote(record)
    if reason:
        raise InvalidSetting(
            f"Not a vote: {reason}.", 'Store what BlindRound.vote() returns: {"a", "b", "winner"}.'
        )
    return record
