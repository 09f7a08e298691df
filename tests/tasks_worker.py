"""Tiny workers for tests/test_tasks.py, run in a subprocess Task (never imported by pytest)."""

import os
import signal
import subprocess
import sys
import time

from llamalab import InvalidSetting
from llamalab.core import tasks


def count(n: int) -> dict:
    """n progress events, a file in the output folder, a line on stderr per step."""
    for i in range(n):
        print(f"step {i} of {n}", file=sys.stderr, flush=True)
        tasks.progress(i + 1, n, f"step {i + 1}")
    (tasks.output_dir() / "result.txt").write_text(str(n))
    return {"n": n}


def crash(lines: int) -> dict:
    """Write partial output and `lines` lines of log, then fail with a Python exception."""
    (tasks.output_dir() / "partial.txt").write_text("half")
    for i in range(lines):
        print(f"log line {i}", file=sys.stderr, flush=True)
    raise RuntimeError("the worker broke")


def refuse() -> dict:
    raise InvalidSetting("samples=0 is too small.", "Use samples ≥ 1.")


def hang(ignore_term: bool = False) -> dict:
    """Write partial output, start a grandchild, report both PIDs, then sleep until killed."""
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (tasks.output_dir() / "partial.txt").write_text("half")
    child = subprocess.Popen(["sleep", "300"])
    tasks.emit("pids", child=child.pid)
    time.sleep(300)
    return {}


if __name__ == "__main__":  # the module form: python -m tasks_worker N
    n = int(sys.argv[1])
    for i in range(n):
        tasks.progress(i + 1, n)
    print("plain stdout line")
    if not os.environ.get("TASKS_WORKER_SILENT"):
        tasks.done(total=n)
