"""Where the kit keeps what it makes (LLAMALAB_CACHE, writable; LLAMALAB_SHARED_CACHE, a read-only
cache built in advance and looked up first), and the one way it writes: build in a temporary
sibling, then rename, so a reader sees nothing or the complete result."""

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


def shared_cache_dir() -> Path | None:
    """LLAMALAB_SHARED_CACHE: a cache built in advance for many users (a room's hub mounts one
    read-only). What is complete there is used in place; the kit never writes into it."""
    env = os.environ.get("LLAMALAB_SHARED_CACHE")
    shared = Path(env).expanduser().absolute() if env else None
    return None if shared == cache_dir().absolute() else shared  # one folder: the writable one


def cached(relative: str | Path, done: Callable[[Path], bool] = Path.exists) -> Path:
    """Where `relative` (a path inside the cache) is: the shared cache's copy when `done` says it is
    complete there, else the writable cache's (where it is, or will be, written)."""
    shared = shared_cache_dir()
    if shared is not None and done(shared / relative):
        return shared / relative
    return cache_dir() / relative


def writable(path: Path) -> Path:
    """`path` moved from the shared cache to the same place in the writable one (any other path
    unchanged): where a write meant for `path` goes."""
    shared, path = shared_cache_dir(), Path(path)
    if shared is not None and path.absolute().is_relative_to(shared):
        return cache_dir() / path.absolute().relative_to(shared)
    return path


def cache_roots() -> list[Path]:
    """The caches a lookup searches, the writable one first, then the shared one if set."""
    shared = shared_cache_dir()
    return [cache_dir(), *([shared] if shared is not None else [])]


def in_cache(path: Path) -> Path | None:
    """`path` relative to the cache that holds it (writable or shared), or None if neither does."""
    path = Path(path).absolute()
    root = next((r for r in cache_roots() if path.is_relative_to(r.absolute())), None)
    return path.relative_to(root.absolute()) if root is not None else None


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
