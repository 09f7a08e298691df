"""Long work as one Task — a worker thread or a subprocess — with one set of states, events,
progress, a log tail, `stop()` and `wait()`, and one registry that stops whatever still runs when
Python exits (the kit's only at-exit hook; `on_exit()` adds to it).
Quantizing, a fine-tuning run, the model server and every widget's background job are Tasks.

    task = tasks.start_thread(work, label="fine-tuning")  # work(task): task.emit(), task.stopping
    task = tasks.start_process(
        "llamalab.quantization.worker:quantize_checkpoint", kwargs={...}, output=folder
    )
    task.state, task.fraction, task.message, task.tail()  # while it runs (widgets: on_event=)
    task.stop()     # a thread: sets task.stop_event, which the work checks; a process: SIGTERM,
                    # SIGKILL after `grace`
    task.wait()     # its result; raises TaskFailed (with the log tail) or TaskStopped; Ctrl-C stops
                    # it, then re-raises

A subprocess worker is a function `module:name` (called with `kwargs`; its returned dict is the
result) or a module run with `python -m` (it calls `done(**result)`). It reports with
`progress(i, n, "…")` and `emit()` (JSON lines on stdout), writes into `output_dir()` (a temp folder
renamed to `output` only on success) and fails with the kit's error or any exception (the traceback
lands in the log). A subprocess rather than a thread when the work's imports, memory peak or
allocator settings must stay out of the notebook kernel, or it must be killable by PID; a function
worker also ends when its parent dies (a kernel restart).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import errors
from .errors import InvalidSetting, LlamalabError, TaskFailed, TaskStopped
from .paths import atomic_dir

STATES = ("starting", "running", "done", "failed", "stopped")
OUTPUT_ENV = "LLAMALAB_TASK_OUTPUT"
# -c rather than `-m llamalab.core.tasks`: importing the package imports this module first,
# so -m would run a copy
RUN_FUNCTION = (
    "import sys; from llamalab.core.tasks import _run_function; "
    "sys.exit(_run_function(*sys.argv[1:]))"
)
EVENT_MARK = '{"event"'

__all__ = [
    "AnyOf",
    "Deadline",
    "Task",
    "done",
    "emit",
    "on_exit",
    "output_dir",
    "progress",
    "running",
    "start_process",
    "start_thread",
]

_live: set[Task] = set()
_live_lock = threading.Lock()


class Task:
    """Long work and what it has said so far. Made by `start_thread()` or `start_process()`."""

    def __init__(
        self,
        label: str,
        kind: str,
        tail_lines: int = 40,
        show_progress: bool = False,
        on_event: Callable[[dict], None] | None = None,
        on_end: Callable[[Task], None] | None = None,
    ):
        self.label, self.kind = label, kind
        self.state = "starting"
        self.events: list[dict] = []
        self.fraction: float | None = None
        self.message = ""
        self.result: Any = None
        self.error: BaseException | None = None
        self.pid: int | None = None
        self.stop_event = threading.Event()
        # a process task's private folder (its cwd) and its full log; a thread task keeps a tail
        self.workdir: Any = None
        self.log_path: Any = None
        if kind == "process":
            self.workdir = Path(tempfile.mkdtemp(prefix="llamalab-task-"))
            self.log_path = self.workdir / "task.log"
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._listeners = [on_event] if on_event else []
        self._on_end, self._show_progress = on_end, show_progress
        self._bar: Any = None  # a tqdm bar, made at the first progress event when asked for
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._log = open(self.log_path, "w") if self.log_path else None

    # ---------------------------------------------------------------- what a caller uses

    @property
    def running(self) -> bool:
        """True until the task has ended (done, failed or stopped)."""
        return self.state in ("starting", "running")

    @property
    def stopping(self) -> bool:
        """True once `stop()` was asked: thread work checks it between steps."""
        return self.stop_event.is_set()

    def tail(self, n: int | None = None) -> str:
        """The last lines of the task's log, newest last."""
        with self._lock:
            lines = list(self._tail)
        return "\n".join(lines[-n:] if n else lines)

    def on_event(self, fn: Callable[[dict], None]) -> None:
        """Call `fn(event)` for each event from now on (on the task's own thread: keep it quick)."""
        self._listeners.append(fn)

    def stop(self, grace: float = 5.0) -> Task:
        """Ask the task to end and return at once; `wait()` blocks until it has. A thread ends at
        its next check of `stopping`; a process (its whole process group) gets SIGTERM, then SIGKILL
        after `grace` s."""
        if self.running and not self.stop_event.is_set():
            self.stop_event.set()
            if self.kind == "process":
                self._signal(signal.SIGTERM)
                kill = threading.Timer(grace, self._signal, (signal.SIGKILL,))
                kill.daemon = True  # never holds up the interpreter's exit
                kill.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Block until the task has ended (or `timeout` s passed); True if it has.
        Never raises its error."""
        return self._ended.wait(timeout)

    def wait(self, timeout: float | None = None):
        """The result; raises the task's error (TaskFailed, the kit's error it raised) or
        TaskStopped. Ctrl-C while waiting stops the task, waits for it to end, and raises
        KeyboardInterrupt."""
        try:
            if not self._ended.wait(timeout):
                raise TimeoutError(f"{self.label} still running after {timeout} s.")
        except KeyboardInterrupt:
            self.stop()
            self._ended.wait()
            raise
        if self.error is not None:
            raise self.error
        return self.result

    def emit(self, event: str, **data) -> None:
        """Report an event from thread work (a subprocess prints it instead:
        module-level `emit`)."""
        self._handle({"event": event, **data})

    def progress(self, step: int, total: int, message: str = "") -> None:
        """`step` of `total` done: `fraction` and `message` follow, and a progress bar if
        one was asked for."""
        self.emit("progress", done=step, total=total, message=message)

    def log(self, text: str) -> None:
        """Add lines to the log (and the tail)."""
        lines = [ln for ln in str(text).splitlines() if ln.strip()]
        if not lines:
            return
        with self._lock:
            self._tail.extend(lines)
            if self._log is not None and not self._log.closed:
                self._log.write("\n".join(lines) + "\n")
                self._log.flush()

    def __repr__(self) -> str:
        pct = f" {self.fraction:.0%}" if self.fraction is not None else ""
        pid = f" pid={self.pid}" if self.pid else ""
        return f"<Task {self.label!r}{pid} {self.state}{pct}>"

    # ---------------------------------------------------------------- the common end

    def _handle(self, event: dict) -> None:
        self.events.append(event)
        kind = event.get("event")
        if kind == "progress" and event.get("total"):
            self.fraction, self.message = event["done"] / event["total"], event.get("message", "")
            self._update_bar(event)
        elif kind == "done":
            self.result = {k: v for k, v in event.items() if k != "event"}
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception as e:
                self.log(f"on_event listener raised {type(e).__name__}: {e}")

    def _update_bar(self, event: dict) -> None:
        if not self._show_progress:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=event["total"], desc=self.label, file=sys.stderr)
        self._bar.set_postfix_str(event.get("message", ""), refresh=False)
        self._bar.update(event["done"] - self._bar.n)

    def _started(self) -> None:
        with _live_lock:
            _live.add(self)
        self.state = "running"

    def _end(self, error: BaseException | None) -> None:
        """Record how the task ended, close what it held, tell the registry and `on_end`."""
        if error is not None and not isinstance(error, TaskStopped):
            self.state, self.error = "failed", error
        elif self.stop_event.is_set():
            self.state = "stopped"
            self.error = error or TaskStopped(
                f"{self.label} was stopped.", "Start it again to redo the work.", self.tail()
            )
        else:
            self.state = "done"
        if self._bar is not None:
            self._bar.close()
        if self._log is not None:
            with self._lock:
                self._log.close()
            if self.state != "failed":  # a failure keeps its log for the error to point at
                shutil.rmtree(self.workdir, ignore_errors=True)
        with _live_lock:
            _live.discard(self)
        if (
            self._on_end is not None
        ):  # before waiters wake: a widget's wait() returns with its view updated
            try:
                self._on_end(self)
            except Exception as e:
                print(
                    f"llamalab: on_end of {self.label} raised {type(e).__name__}: {e}",
                    file=sys.stderr,
                )
        self._ended.set()

    def _signal(self, sig: int) -> None:
        """Signal a process task's process group (its children too) while it runs."""
        if self.kind != "process" or self.pid is None or not self.running:
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


# ---------------------------------------------------------------- thread tasks


def start_thread(
    work: Callable,
    *args,
    label: str = "",
    on_event: Callable[[dict], None] | None = None,
    on_end: Callable[[Task], None] | None = None,
    progress: bool = False,
    tail_lines: int = 40,
) -> Task:
    """Run `work(task, *args)` in a daemon thread; its return value is the result. The work reports
    with `task.emit()` / `task.progress()` / `task.log()` and checks `task.stopping` between steps;
    work that returns after `stop()` was asked ends "stopped" (its return value is still kept in
    `task.result`)."""
    task = Task(
        label or getattr(work, "__name__", "task"), "thread", tail_lines, progress, on_event, on_end
    )

    def run() -> None:
        task._started()
        error = None
        try:
            task.result = work(task, *args)
        except BaseException as e:
            error = e
        task._end(error)

    threading.Thread(target=run, name=f"llamalab-task {task.label}", daemon=True).start()
    return task


# ---------------------------------------------------------------- process tasks, parent side


def start_process(
    target: str,
    *args,
    kwargs: dict | None = None,
    output: str | Path | None = None,
    replace: bool = False,
    env: dict | None = None,
    cwd: str | Path | None = None,
    label: str = "",
    tail_lines: int = 40,
    progress: bool = False,
    on_event: Callable[[dict], None] | None = None,
    on_end: Callable[[Task], None] | None = None,
    finish: Callable[[Path, Task], None] | None = None,
) -> Task:
    """Start `python -m target *args`, or the function `target="module:function"` with `kwargs`.

    output: the folder the worker fills (via `output_dir()`); it appears only if the task succeeds
      (`replace=True` replaces an older one). `finish(tmp, task)` runs just before the rename.
    env: extra environment variables; cwd: default the task's private work folder.
    progress: a tqdm bar from the worker's progress events; on_event(event) for widgets (on the
      task's reader thread); tail_lines: how many log lines `tail()` and errors keep.
    """
    if (
        not isinstance(target, str)
        or not target.replace(":", ".").replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidSetting(
            f"target={target!r} is not a module or 'module:function'.",
            "Pass e.g. 'llamalab.quantization.worker:quantize_checkpoint'.",
        )
    if kwargs and ":" not in target:
        raise InvalidSetting(
            f"kwargs go to a function target; {target!r} is a module.",
            "Pass args for a module, or target='module:function' with kwargs.",
        )
    task = Task(label or target, "process", tail_lines, progress, on_event, on_end)
    runner = _ProcessRunner(
        task,
        target,
        args,
        kwargs,
        Path(output).resolve() if output is not None else None,
        replace,
        env,
        Path(cwd) if cwd is not None else None,
        finish,
    )
    return runner.start()


class _ProcessRunner:
    """Spawns the worker, pumps its output into the Task, renames its output on success."""

    def __init__(self, task: Task, target, args, kwargs, output, replace, env, cwd, finish):
        self.task, self.target, self.args, self.kwargs = task, target, args, kwargs
        self.output, self.replace, self.finish = output, replace, finish
        self.env, self.cwd = env, cwd
        self.proc: Any = None  # the worker's Popen, once spawned
        self.spawned = threading.Event()

    def start(self) -> Task:
        threading.Thread(
            target=self.supervise, name=f"llamalab-task {self.task.label}", daemon=True
        ).start()
        self.spawned.wait()
        if self.task.pid is None:  # could not even spawn: report it at once
            self.task.wait()
        return self.task

    def supervise(self) -> None:
        error = None
        try:
            if self.output is None:
                self.run(None)
            else:
                with atomic_dir(self.output, replace=self.replace) as tmp:
                    self.run(tmp.resolve())
                    if self.finish:
                        self.finish(tmp, self.task)
        except BaseException as e:
            error = e
        finally:
            self.close()
            self.spawned.set()
        self.task._end(error)

    def run(self, tmp: Path | None) -> None:
        self.spawn(tmp)
        self.task._started()
        self.spawned.set()
        err = threading.Thread(target=self.pump_stderr, daemon=True)
        err.start()
        for line in self.proc.stdout:
            self.line(line)
        rc = self.proc.wait()
        err.join()
        self.raise_if_failed(rc)

    def spawn(self, tmp: Path | None) -> None:
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        if tmp is not None:
            env[OUTPUT_ENV] = str(tmp)
        if ":" in self.target:
            kwargs_file = self.task.workdir / "kwargs.json"
            kwargs_file.write_text(json.dumps(self.kwargs or {}))
            cmd = [sys.executable, "-c", RUN_FUNCTION, self.target, str(kwargs_file)]
        else:
            cmd = [sys.executable, "-m", self.target, *map(str, self.args)]
        # stdin stays open and unused: a worker ends when it closes; its own process group: stop()
        # reaches the worker's children too
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen(
            cmd,
            stdin=pipe,
            stdout=pipe,
            stderr=pipe,
            text=True,
            errors="replace",
            env=env,
            cwd=self.cwd or self.task.workdir,
            start_new_session=True,
        )
        self.task.pid = self.proc.pid

    def pump_stderr(self) -> None:
        for line in self.proc.stderr:
            self.task.log(line)

    def line(self, line: str) -> None:
        at = line.find(EVENT_MARK)
        if at < 0:
            self.task.log(line)
            return
        self.task.log(line[:at])
        try:
            event = json.loads(line[at:])
        except ValueError:
            self.task.log(line[at:])
            return
        if isinstance(event, dict):
            self.task._handle(event)

    def raise_if_failed(self, rc: int) -> None:
        task = self.task
        if task.stop_event.is_set():
            raise TaskStopped(
                f"{task.label} was stopped.", "Start it again to redo the work.", task.tail()
            )
        error = next((e for e in reversed(task.events) if e.get("event") == "error"), None)
        if error is not None:
            raise _worker_error(error, task.tail())
        if rc != 0 or task.result is None:
            why = f"exit code {rc}" if rc != 0 else "no result reported"
            raise TaskFailed(
                f"{task.label} failed ({why}). Last lines of its log:\n{task.tail(15)}",
                f"Full log: {task.log_path}",
                task.tail(),
            )

    def close(self) -> None:
        proc = self.proc
        if proc is not None and (self.task.stop_event.is_set() or proc.poll() is None):
            # stragglers of a stopped group, or the supervisor itself failed
            self.task._signal(signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr) if proc else ():
            stream.close()


def _worker_error(event: dict, tail: str) -> LlamalabError:
    """The kit's error the worker raised, rebuilt when it takes (message, fix), else TaskFailed."""
    cls = getattr(errors, str(event.get("kind", "")), None)
    message, fix = event.get("message", ""), event.get("fix", "")
    if (
        isinstance(cls, type)
        and issubclass(cls, LlamalabError)
        and cls.__init__ is LlamalabError.__init__
    ):
        return cls(message, fix)
    return TaskFailed(message, fix, tail)


# ---------------------------------------------------------------- process tasks, worker side


def emit(event: str, **data) -> None:
    """One JSON line on stdout, on its own line (libraries may redraw bars with \\r on
    the same stream)."""
    print("\n" + json.dumps({"event": event, **data}), flush=True)


def progress(step: int, total: int, message: str = "") -> None:
    """In a subprocess worker: `step` of `total` done (the parent's `Task.fraction`
    and `message`)."""
    emit("progress", done=step, total=total, message=message)


def done(**result) -> None:
    """In a module worker: the result (JSON-able) that `Task.wait()` returns."""
    emit("done", **result)


def output_dir() -> Path:
    """In a subprocess worker: the temp folder to write the output into (renamed to its
    place on success)."""
    return Path(os.environ[OUTPUT_ENV])


def _run_function(target: str, kwargs_file: str) -> int:
    """In the worker (RUN_FUNCTION): call module:function with the kwargs file, report its
    result or its error."""
    module, _, name = target.partition(":")
    kwargs = json.loads(Path(kwargs_file).read_text())
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    try:
        result = getattr(importlib.import_module(module), name)(**kwargs)
    except LlamalabError as e:
        emit("error", message=e.message, fix=e.fix, kind=type(e).__name__)
        return 2
    done(**(result if isinstance(result, dict) else {"value": result}))
    return 0


def _exit_with_parent() -> None:
    """The parent holds our stdin open: EOF means it is gone (a kernel restart),
    so the work stops too."""
    sys.stdin.read()
    os.killpg(os.getpgid(0), signal.SIGKILL)


# ---------------------------------------------------------------- stop events


class AnyOf(threading.Event):
    """A stop event that is set by its own `set()` or when any of `events` is (a call's own stop,
    the caller's `stop_event`, a deadline): long work checks one `is_set()`."""

    def __init__(self, *events: threading.Event):
        super().__init__()
        self.events = events

    def is_set(self) -> bool:
        return super().is_set() or any(e.is_set() for e in self.events)


class Deadline(threading.Event):
    """A stop event that sets itself at a time (`time.perf_counter()` seconds):
    a request's timeout."""

    def __init__(self, at: float):
        super().__init__()
        self.at = at

    def is_set(self) -> bool:
        return super().is_set() or time.perf_counter() > self.at


# ---------------------------------------------------------------- the registry


_exit_hooks: list[Callable[[], None]] = []


def running() -> list[Task]:
    """Every task of this process that has not ended yet."""
    with _live_lock:
        return list(_live)


def on_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Run `fn` when Python exits, after the tasks are stopped (an engine frees what its library
    would otherwise free too late); usable as a decorator."""
    _exit_hooks.append(fn)
    return fn


@atexit.register
def _stop_all() -> None:
    """At exit, stop what is left: processes by PID (SIGKILL after 2 s), threads through their stop
    event; then the exit hooks."""
    tasks = running()
    for task in tasks:
        task.stop(grace=2.0)
    for task in tasks:
        if task.kind == "process":
            task._ended.wait(3.0)
    for fn in _exit_hooks:
        fn()
