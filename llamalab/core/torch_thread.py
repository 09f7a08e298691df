"""One thread per process runs every torch op: loading, generation, scoring, unloading.

torch's CPU build uses GNU OpenMP, and each Python thread that runs a parallel op gets its own
OpenMP thread team, which stays alive. Once two Python threads have run torch there are more
OpenMP threads than cores and a small model decodes about a third slower (benchmarks/threads.py).
So torch work is submitted to one persistent daemon thread, whichever thread calls (a cell, a
widget's worker, a test); the caller waits, streams and can stop, and the kernel stays free.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
THREAD_NAME = "llamalab-torch"

_jobs: queue.SimpleQueue = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start_lock = threading.Lock()


def is_torch_thread() -> bool:
    """True on the thread that runs torch work (where `run` calls its function inline)."""
    return _thread is not None and threading.current_thread() is _thread


def submit(fn: Callable[..., T], *args, **kwargs) -> Future:
    """Queue `fn(*args, **kwargs)` for the torch thread; the Future holds its
    result or exception."""
    future: Future = Future()
    _jobs.put((future, fn, args, kwargs))
    _ensure_thread()
    return future


def run(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run `fn` on the torch thread and return its result (its exception is raised here).
    Called on the torch thread itself it runs inline, so re-entry never deadlocks."""
    if is_torch_thread():
        return fn(*args, **kwargs)
    return wait(submit(fn, *args, **kwargs))


def wait(future: Future, on_interrupt: Callable[[], None] | None = None):
    """The future's result. On Ctrl-C (KeyboardInterrupt) with `on_interrupt` given: call it (e.g.
    set a stop event), wait for the job to end, then raise KeyboardInterrupt; without it, raise at
    once (the job finishes in the background: torch work cannot be cancelled halfway)."""
    try:
        return future.result()
    except KeyboardInterrupt:
        if on_interrupt is None:
            raise
        on_interrupt()
        try:
            future.result()
        except Exception:
            pass
        raise


def _ensure_thread() -> None:
    global _thread
    with _start_lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_serve, name=THREAD_NAME, daemon=True)
            _thread.start()


def _serve() -> None:
    while True:
        _run_one(*_jobs.get())  # in a helper: no reference to the last job outlives it


def _run_one(future: Future, fn, args, kwargs) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:
        future.set_exception(e)
    else:
        future.set_result(result)
