"""Long work in a subprocess: JSON-line progress events, a progress bar, a log tail, atomic output and
cancellation by PID. Quantizing uses it; fine-tuning and the model server will.

    job = jobs.start("my.module:work", kwargs={"n": 3}, output=folder, progress=True)
    job.fraction, job.message, job.tail()     # while it runs (a widget passes on_event= instead)
    result = job.wait()                        # the worker's "done" data, or JobFailed with the log tail
    job.cancel()                               # SIGTERM, SIGKILL after a grace period; no output left

The worker side is a module run with `python -m` or a function `module:name` called with `kwargs`.
It reports with `progress(i, n, "…")` and `done(**result)` (a function's returned dict is its result),
writes into `output_dir()` (a temp folder renamed to `output` only on success) and fails with the
kit's error or any exception (the traceback lands in the log). A function worker also ends when its
parent dies (a kernel restart), so no orphan keeps quantizing. Subprocess rather than thread: the
work's imports, memory peak and allocator settings stay out of the notebook kernel, and a PID can
be killed.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Callable

from . import errors
from .errors import InvalidSetting, JobCancelled, JobFailed, LlamalabError
from .paths import atomic_dir

OUTPUT_ENV = "LLAMALAB_JOB_OUTPUT"
# -c rather than `-m llamalab.jobs`: importing the package imports this module first, so -m would run a copy
RUN_FUNCTION = "import sys; from llamalab.jobs import _run_function; sys.exit(_run_function(*sys.argv[1:]))"
EVENT_MARK = '{"event"'

__all__ = ["Job", "start", "progress", "done", "emit", "output_dir"]


# ---- worker side ----------------------------------------------------------------------------------

def emit(event: str, **data) -> None:
    """One JSON line on stdout, on its own line (libraries may redraw bars with \\r on the same stream)."""
    print("\n" + json.dumps({"event": event, **data}), flush=True)


def progress(step: int, total: int, message: str = "") -> None:
    """`step` of `total` done; `Job.fraction` is step / total and `Job.message` the message."""
    emit("progress", done=step, total=total, message=message)


def done(**result) -> None:
    """The job's result (JSON-able); `Job.wait()` returns it."""
    emit("done", **result)


def output_dir() -> Path:
    """The temp folder to write the job's output into (renamed to its final place on success)."""
    return Path(os.environ[OUTPUT_ENV])


def _run_function(target: str, kwargs_file: str) -> int:
    """In the worker (RUN_FUNCTION): call module:function with the kwargs file, report its result or its error."""
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
    """The parent holds our stdin open: EOF means it is gone (a kernel restart), so the work stops too."""
    sys.stdin.read()
    os.killpg(os.getpgid(0), signal.SIGKILL)


# ---- parent side ----------------------------------------------------------------------------------

class Job:
    """A running subprocess and what it has said so far. Made by `start()`."""

    def __init__(self, target: str, args: tuple, kwargs: dict | None, output: Path | None, replace: bool,
                 env: dict | None, cwd: Path | None, label: str, tail_lines: int, show_progress: bool,
                 on_event: Callable[[dict], None] | None, finish: Callable[[Path, "Job"], None] | None):
        self.target, self.label = target, label or target
        self.output = Path(output).resolve() if output is not None else None
        self.workdir = Path(tempfile.mkdtemp(prefix="llamalab-job-"))   # cwd for stray files + the log
        self.log_path = self.workdir / "job.log"
        self.events: list[dict] = []
        self.fraction: float | None = None
        self.message = ""
        self.state = "starting"      # running → done | failed | cancelled
        self.result: dict | None = None
        self.pid: int | None = None
        self._args, self._kwargs, self._replace, self._env, self._cwd = args, kwargs, replace, env, cwd
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._on_event, self._finish, self._show_progress = on_event, finish, show_progress
        self._bar = None
        self._proc: subprocess.Popen | None = None
        self._error: BaseException | None = None
        self._cancelled = False
        self._lock = threading.Lock()
        self._spawned, self._finished = threading.Event(), threading.Event()
        self._log = open(self.log_path, "w")

    # -- what a caller uses --

    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    def tail(self, n: int | None = None) -> str:
        """The last lines of the worker's log (stderr and non-event stdout), newest last."""
        with self._lock:
            lines = list(self._tail)
        return "\n".join(lines[-n:] if n else lines)

    def wait(self, timeout: float | None = None) -> dict:
        """The worker's result; raises JobFailed (with the log tail) or JobCancelled. Ctrl-C cancels."""
        try:
            if not self._finished.wait(timeout):
                raise TimeoutError(f"{self.label} still running after {timeout} s (pid {self.pid}).")
        except KeyboardInterrupt:
            self.cancel()
            raise
        if self._error is not None:
            raise self._error
        return self.result or {}

    def cancel(self, grace: float = 5.0) -> None:
        """Terminate the worker (its process group) by PID, kill it after `grace` seconds, and return once
        its temp output and work folder are gone."""
        if not self.running:
            return
        self._cancelled = True
        self._signal(signal.SIGTERM)
        self._exited(grace)
        self._signal(signal.SIGKILL)    # the worker if it ignored SIGTERM, and any child it left behind
        self._finished.wait()

    def __repr__(self) -> str:
        pct = f" {self.fraction:.0%}" if self.fraction is not None else ""
        return f"<Job {self.label!r} pid={self.pid} {self.state}{pct}>"

    # -- the supervisor thread --

    def _start(self) -> "Job":
        threading.Thread(target=self._supervise, name=f"job {self.label}", daemon=True).start()
        self._spawned.wait()
        if self.pid is None:           # could not even spawn: report it at once
            self._finished.wait()
            raise self._error
        return self

    def _supervise(self) -> None:
        try:
            if self.output is None:
                self._run(None)
            else:
                with atomic_dir(self.output, replace=self._replace) as tmp:
                    self._run(tmp.resolve())
                    if self._finish:
                        self._finish(tmp, self)
            self.state = "done"
        except BaseException as e:     # noqa: BLE001 — handed to wait()
            self._error = e
            self.state = "cancelled" if self._cancelled else "failed"
        finally:
            self._close()
            self._spawned.set()
            self._finished.set()

    def _run(self, tmp: Path | None) -> None:
        self._spawn(tmp)
        self.state = "running"
        self._spawned.set()
        err = threading.Thread(target=self._pump_stderr, daemon=True)
        err.start()
        for line in self._proc.stdout:
            self._line(line)
        rc = self._proc.wait()
        err.join()
        self._raise_if_failed(rc)

    def _spawn(self, tmp: Path | None) -> None:
        env = {**os.environ, **(self._env or {}), "PYTHONUNBUFFERED": "1"}
        if tmp is not None:
            env[OUTPUT_ENV] = str(tmp)
        if ":" in self.target:
            kwargs_file = self.workdir / "kwargs.json"
            kwargs_file.write_text(json.dumps(self._kwargs or {}))
            cmd = [sys.executable, "-c", RUN_FUNCTION, self.target, str(kwargs_file)]
        else:
            cmd = [sys.executable, "-m", self.target, *map(str, self._args)]
        pipe = subprocess.PIPE      # stdin stays open and unused: a function worker exits when it closes
        self._proc = subprocess.Popen(cmd, stdin=pipe, stdout=pipe, stderr=pipe, text=True, errors="replace",
                                      env=env, cwd=self._cwd or self.workdir,
                                      start_new_session=True)    # its own process group: cancel reaches children
        self.pid = self._proc.pid

    def _pump_stderr(self) -> None:
        for line in self._proc.stderr:
            self._write_log(line)

    def _line(self, line: str) -> None:
        at = line.find(EVENT_MARK)
        if at < 0:
            self._write_log(line)
            return
        self._write_log(line[:at])
        try:
            event = json.loads(line[at:])
        except ValueError:
            self._write_log(line[at:])
            return
        if isinstance(event, dict):
            self._handle(event)

    def _handle(self, event: dict) -> None:
        self.events.append(event)
        kind = event.get("event")
        if kind == "progress" and event.get("total"):
            self.fraction = event["done"] / event["total"]
            self.message = event.get("message", "")
            self._update_bar(event)
        elif kind == "done":
            self.result = {k: v for k, v in event.items() if k != "event"}
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception as e:      # noqa: BLE001 — a widget's bug must not stop the pump
                self._write_log(f"on_event raised {type(e).__name__}: {e}\n")

    def _update_bar(self, event: dict) -> None:
        if not self._show_progress:
            return
        if self._bar is None:
            from tqdm import tqdm
            self._bar = tqdm(total=event["total"], desc=self.label, file=sys.stderr)
        self._bar.set_postfix_str(event.get("message", ""), refresh=False)
        self._bar.update(event["done"] - self._bar.n)

    def _write_log(self, text: str) -> None:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            return
        with self._lock:
            self._tail.extend(lines)
            self._log.write("\n".join(lines) + "\n")
            self._log.flush()

    def _raise_if_failed(self, rc: int) -> None:
        if self._cancelled:
            raise JobCancelled(f"{self.label} was cancelled.", "Start it again to redo the work.", self.tail())
        error = next((e for e in reversed(self.events) if e.get("event") == "error"), None)
        if error is not None:
            raise _worker_error(error, self.tail())
        if rc != 0 or self.result is None:
            why = f"exit code {rc}" if rc != 0 else "no result reported"
            raise JobFailed(f"{self.label} failed ({why}). Last lines of its log:\n{self.tail(15)}",
                            f"Full log: {self.log_path}", self.tail())

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._proc is not None and (self._cancelled or self._proc.poll() is None):
            self._signal(signal.SIGKILL)       # cancelled (stragglers of its group), or the supervisor failed
            self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr) if self._proc else ():
            stream.close()
        with self._lock:
            self._log.close()
        if self.state in ("done", "cancelled"):   # a failure keeps its log for the error to point at
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _signal(self, sig: int) -> None:
        """Signal the worker's process group (its children too), while the job is not finished."""
        if self.pid is None or self._finished.is_set():
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _exited(self, grace: float) -> bool:
        try:
            self._proc.wait(grace)
            return True
        except subprocess.TimeoutExpired:
            return False


def _worker_error(event: dict, tail: str) -> LlamalabError:
    """The kit's error the worker raised, rebuilt when it takes (message, fix), else JobFailed."""
    cls = getattr(errors, str(event.get("kind", "")), None)
    message, fix = event.get("message", ""), event.get("fix", "")
    if isinstance(cls, type) and issubclass(cls, LlamalabError) and cls.__init__ is LlamalabError.__init__:
        return cls(message, fix)
    return JobFailed(message, fix, tail)


def start(target: str, *args, kwargs: dict | None = None, output: str | Path | None = None,
          replace: bool = False, env: dict | None = None, cwd: str | Path | None = None, label: str = "",
          tail_lines: int = 40, progress: bool = False, on_event: Callable[[dict], None] | None = None,
          finish: Callable[[Path, Job], None] | None = None) -> Job:
    """Start `python -m target *args`, or the function `target="module:function"` with `kwargs`.

    output: the folder the worker fills (via `output_dir()`); it appears only if the job succeeds
      (`replace=True` replaces an older one). `finish(tmp, job)` runs just before the rename.
    env: extra environment variables; cwd: default a private work folder (stray files land there).
    progress: a tqdm bar from the worker's progress events; on_event(event_dict) for widgets (runs on
      the job's reader thread). tail_lines: how many log lines `tail()` and errors keep.
    """
    if not isinstance(target, str) or not target.replace(":", ".").replace("_", "").replace(".", "").isalnum():
        raise InvalidSetting(f"target={target!r} is not a module or 'module:function'.",
                             "Pass e.g. 'llamalab.quantize.worker:quantize_checkpoint'.")
    if kwargs and ":" not in target:
        raise InvalidSetting(f"kwargs go to a function target; {target!r} is a module.",
                             "Pass args for a module, or target='module:function' with kwargs.")
    return Job(target, args, kwargs, Path(output) if output is not None else None, replace, env,
               Path(cwd) if cwd is not None else None, label, tail_lines, progress, on_event, finish)._start()
