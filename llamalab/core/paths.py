"""Where the kit keeps what it makes (LLAMALAB_CACHE), and the one way it writes there:
build in a temporary sibling, then rename, so a reader sees nothing or the complete result."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir() -> Path:
    """LLAMALAB_CACHE, else ~/.cache/llamalab (XDG_CACHE_HOME respected)."""
    env = os.environ.get("LLAMALAB_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llamalab"


@contextmanager
def atomic_dir(
    target: Path, done: Callable[[Path], bool] | None = None, replace: bool = False
) -> Iterator[Path]:
    """Yield an empty temp folder beside `target`; on success rename it to `target`.

    A concurrent writer that got there first is fine when `done(target)` says its result is complete
    (default: the folder exists); `replace=True` removes an older `target` instead. On error the
    temp folder is removed and `target` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        if replace and target.exists():
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if not (done or Path.exists)(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target` to write; on success it replaces `target` in one rename.
    A writer that fails (raises, or leaves no file) leaves `target` as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        yield tmp
        if tmp.is_file():
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
