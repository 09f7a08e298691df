"""JSON-lines files of the room's records, written and read without following a symlink: the folder
is opened with O_NOFOLLOW and each file inside it relative to that open folder, with O_NOFOLLOW too,
so a link planted in a shared folder cannot send an append (or a read) anywhere else."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import LlamalabError

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class SymlinkRefused(LlamalabError):
    """The results folder or one of its files is a symbolic link: the kit writes only real files."""


class RecordRejected(LlamalabError, ValueError):
    """A record that does not have the shape its kind needs (the message says which field)."""


def refuse_link(path: Path) -> None:
    """SymlinkRefused if `path` is a symbolic link."""
    if Path(path).is_symlink():
        raise _refused(Path(path))


def _refused(path: Path) -> SymlinkRefused:
    return SymlinkRefused(
        f"{path} is a symbolic link; the room's records are never written or read through one.",
        "Point the results folder at a real folder you own (not a link), and remove links "
        "inside it.",
    )


@contextmanager
def _folder(folder: Path, create: bool):
    """The open folder's descriptor (O_NOFOLLOW: a link in its place is refused)."""
    folder = Path(folder)
    if folder.is_symlink():
        raise _refused(folder)
    if create:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW)
    except OSError as e:
        if Path(folder).is_symlink():
            raise _refused(folder) from None
        raise LlamalabError(f"Cannot open the results folder {folder}: {e.strerror}.",
                            "Check that it exists and that you may read it.") from None  # fmt: skip
    try:
        yield fd
    finally:
        os.close(fd)


def _open(dir_fd: int, folder: Path, name: str, flags: int) -> int:
    try:
        return os.open(name, flags | NOFOLLOW, 0o600, dir_fd=dir_fd)
    except OSError:
        if os.path.islink(os.path.join(folder, name)):
            raise _refused(Path(folder) / name) from None
        raise


def ensure_folder(folder: Path) -> None:
    """Create `folder` (0700) if missing; SymlinkRefused if it is a link."""
    with _folder(folder, create=True):
        pass


def append_line(folder: Path, name: str, record: dict) -> None:
    """Append `record` as one JSON line to folder/name (created 0600): one write, so concurrent
    appends from several processes stay whole lines."""
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
    with _folder(folder, create=True) as dir_fd:
        fd = _open(dir_fd, folder, name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def read_lines(
    folder: Path, name: str, check: Callable[[dict], dict]
) -> tuple[list[dict], list[dict]]:
    """(records, skipped) of folder/name: each line parsed and passed through `check` (which raises
    RecordRejected); a line that fails is skipped as {"file", "line", "why"}, never raised."""
    return read_folder(folder, name, check, names=(name,))


def read_folder(
    folder: Path, suffix: str, check: Callable[[dict], dict], names: tuple[str, ...] = ()
) -> tuple[list[dict], list[dict]]:
    """(records, skipped) of every file in `folder` ending in `suffix` (or of `names`), in name
    order; a missing folder or file reads as empty."""
    if not Path(folder).is_symlink() and not Path(folder).exists():
        return [], []
    records: list[dict] = []
    skipped: list[dict] = []
    with _folder(folder, create=False) as dir_fd:
        for name in names or sorted(n for n in os.listdir(dir_fd) if n.endswith(suffix)):
            try:
                fd = _open(dir_fd, folder, name, os.O_RDONLY)
            except FileNotFoundError:
                continue
            except SymlinkRefused:
                skipped.append({"file": name, "line": 0, "why": "a symbolic link: not read"})
                continue
            with os.fdopen(fd, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
            _check_lines(name, text, check, records, skipped)
    return records, skipped


def _check_lines(name: str, text: str, check, records: list, skipped: list) -> None:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(check(parse(line)))
        except RecordRejected as e:
            skipped.append({"file": name, "line": n, "why": e.message})


def parse(text: str | bytes) -> dict:
    """One JSON object; RecordRejected for anything else (NaN and Infinity included)."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise RecordRejected(f"not valid JSON ({e})", "Send one JSON object.") from None
    if not isinstance(value, dict):
        raise RecordRejected(f"a JSON {type(value).__name__}, not an object", "Send one object.")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def finite(value) -> bool:
    """A real number (not a bool, NaN or infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
