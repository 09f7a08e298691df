"""Run one notebook the way a learner's kernel runs it,
with mybinder's memory cap enforced and measured.

The cap: RLIMIT_AS (`prlimit --as`) limits *virtual* memory, not resident memory (torch and
llama.cpp map far more than they touch, so it kills healthy runs and lets RSS through), and a cgroup
needs a writable memory controller that a test should not assume. So a watchdog samples the kernel's
process tree (RSS, 10 Hz) and kills it the moment it passes the cap, as mybinder's OOM killer would;
the peak is recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

CAP_BYTES = 2 * 1024**3  # mybinder.org's memory limit
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Every self-check (`expect`) the course's notebooks ran, one JSON line each: {notebook, what, ok}
# (llamalab.course.workbook.record_check). A notebook's old lines go when it starts a new run.
CHECKS = ARTIFACTS / "checks.jsonl"
EXECUTED: dict[
    str, dict
] = {}  # notebook name -> its record, for every notebook executed in this test run


class Watchdog(threading.Thread):
    """Samples the RSS of a process tree; kills it when it passes `cap` bytes."""

    def __init__(self, pid: int, cap: int):
        super().__init__(daemon=True)
        import psutil

        self.proc, self.cap, self.peak, self.killed, self.done = (
            psutil.Process(pid),
            cap,
            0,
            False,
            threading.Event(),
        )

    def run(self):
        import psutil

        while not self.done.wait(0.1):
            try:
                tree = [self.proc, *self.proc.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree)
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss)
            if rss > self.cap:
                self.killed = True
                for p in tree:
                    p.kill()
                return


RUNNER = r"""
import json, sys, time, nbformat, os
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
client = NotebookClient(
    nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": os.path.dirname(path)}}
)
t = time.perf_counter()
with client.setup_kernel():
    print(json.dumps({"kernel_pid": client.km.provisioner.process.pid}), flush=True)
    sys.stdin.readline()                      # the test starts its watchdog, then says go
    client.execute(cleanup_kc=False)
errors = [
    o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
]
print(json.dumps({"wall_s": time.perf_counter() - t,
                  "errors": [e["ename"] + ": " + e["evalue"] + " " + "".join(e["traceback"])[-1500:]
                             for e in errors]}))
"""


def run_notebook(
    python: str,
    path: Path,
    env: dict | None = None,
    cap: int = CAP_BYTES,
    timeout: float = 2400,
    solutions: bool = True,
) -> dict:
    """Execute `path` in a fresh kernel of `python`; the record: wall time, errors, peak RSS,
    killed or not. `solutions`: the exercises' placeholders are answered from the course's answer
    key (LLAMALAB_SOLUTIONS=1), so every exercise's check runs; False runs it as a learner would."""
    env = dict(os.environ if env is None else env, HF_HUB_OFFLINE="1", **checks_env())
    env["LLAMALAB_SOLUTIONS"] = "1" if solutions else "0"
    env["JPY_SESSION_NAME"] = path.name  # what Jupyter's server tells a kernel: its notebook
    forget_checks(path.name)
    p = subprocess.Popen(
        [python, "-c", RUNNER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        dog = Watchdog(json.loads(p.stdout.readline())["kernel_pid"], cap)
        dog.start()
        p.stdin.write("go\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    dog.done.set()
    result = (
        json.loads(out.strip().splitlines()[-1])
        if p.returncode == 0
        else {"errors": [f"exit {p.returncode}"]}
    )
    return {
        "notebook": path.name,
        "runner": "nbclient",
        "peak_rss_bytes": dog.peak,
        "killed_at_cap": dog.killed,
        **result,
    }


def remember(record: dict) -> None:
    """Note that `record["notebook"]` was executed in this test run (by the browser tests,
    which run first)."""
    EXECUTED[record["notebook"]] = record


def executed(name: str) -> dict | None:
    """The record of notebook `name` if something already executed it in this test run,
    else None."""
    return EXECUTED.get(name)


def save(name: str, records: list[dict]) -> None:
    """Append records to test-artifacts/<name>.json (one file per kind of run)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    old = json.loads(path.read_text())["notebooks"] if path.exists() else []
    keep = [r for r in old if r["notebook"] not in {x["notebook"] for x in records}]
    path.write_text(
        json.dumps(
            {
                "cap_bytes": CAP_BYTES,
                "cap": "RSS watchdog on the kernel's process tree",
                "notebooks": keep + records,
            },
            indent=1,
        )
    )


def checks_env() -> dict:
    """The variable that makes `expect()` in a kernel append its checks to CHECKS."""
    ARTIFACTS.mkdir(exist_ok=True)
    return {"LLAMALAB_CHECKS_LOG": str(CHECKS)}


def checks(path: Path = CHECKS) -> list[dict]:
    """The self-checks recorded so far: [{notebook, what, ok, timing}]."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def forget_checks(notebook: str, path: Path = CHECKS) -> None:
    """Drop `notebook`'s recorded checks before it runs again, so what is left is this run's."""
    keep = [c for c in checks(path) if c["notebook"] != notebook]
    if path.exists():
        path.write_text("".join(json.dumps(c) + "\n" for c in keep))
