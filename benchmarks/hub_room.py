"""The room's JupyterHub with simulated learners: one room model server (`serve_room`), one hub
(`serve_hub`: configurable-http-proxy, the room password, a cgroup per learner with enforced memory
and CPU limits, the shared read-only cache, LLAMALAB_ROOM in every kernel), then N learners at
once — each created through the hub's REST API with the room service's admin token, its server
started, a notebook uploaded and its cells executed in a kernel over the websocket as JupyterLab
does. Recorded per learner: completion, server start and notebook time, the cgroup's peak memory
and OOM kills; for the box: its peak memory in use (MemTotal − MemAvailable, sampled, less the
figure before the run), all learners' cgroups together, the room server's and the hub's RSS.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hub_room.py --learners 5

Both phases run notebooks/00_quickstart.ipynb. "room": as stored, with the hub's LLAMALAB_ROOM in
every kernel, so 00 runs in room mode (the room's served model, no torch; a last cell added here
reports whether torch was imported and where the answers came from); "local": the same notebook
with a first cell added that unsets LLAMALAB_ROOM, so each learner loads its own model. Writes
benchmarks/results/hub_room.json, one entry per phase and learner count ("room-8", "local-5"),
kept across runs. The load average before, after and its peak during each phase is recorded:
other jobs on the machine slow every learner down.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import nbformat
import psutil

import llamalab
from llamalab.workshop import serve_room
from llamalab.workshop.hub import serve_hub
from llamalab.workshop.hub_client import HubClient, run_notebook

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"
NO_ROOM = 'import os\nos.environ.pop("LLAMALAB_ROOM", None)  # no room: load the model here'
REPORT = (  # the kernel's state at the end, one JSON line on stdout
    "import json, sys\n"
    "print(json.dumps({'torch': 'torch' in sys.modules, 'device': m.device, "
    "'tokens': g.new_tokens + final.new_tokens}))"
)
PREDICTED = "llamacpp:tokens_predicted_total"  # the room server's counter of tokens it generated


def main() -> None:
    a = _args()
    names = [f"learner{i + 1}" for i in range(a.learners)]
    results = {}
    with serve_room(scheme="q8_0", context=512, learners=a.learners, threads=a.room_threads) as rs:
        hub = serve_hub(memory=a.memory, cpus=a.cpus, room=rs.room, spawn_timeout=900)
        with hub:
            client = HubClient(hub.url, hub.api_token)
            client.create_users(names)
            for phase in a.phases:
                nb = _notebook(a.notebook, room=phase == "room")
                before = rs.server.metrics()[PREDICTED]
                row = _phase(hub, client, names, nb, rs.server.pid)
                row["box"]["room_server_tokens_predicted"] = rs.server.metrics()[PREDICTED] - before
                row.update(limits={"memory": a.memory, "cpus": a.cpus},
                           notebook=str(a.notebook.relative_to(ROOT)),
                           room_server_slots=rs.sizing.slots)  # fmt: skip
                results[f"{phase}-{a.learners}"] = row
                print(json.dumps(row["box"]), flush=True)
    OUT.mkdir(exist_ok=True)
    path = OUT / "hub_room.json"
    kept = json.loads(path.read_text())["phases"] if path.exists() else {}
    out = {
        "what": "simulated learners on the room's JupyterHub (llamalab.workshop.serve_hub) running "
        "notebook 00: phase 'room' in room mode, 'local' each loading its own model",
        "machine": _machine(),
        "jupyterhub": _version("jupyterhub"),
        "phases": {**kept, **results},  # other phases and learner counts: their last run
    }
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps({p: r["box"] for p, r in results.items()}, indent=1))


def _phase(hub, client: HubClient, names: list[str], nb, room_pid: int) -> dict:
    """All learners at once: start a server, run `nb`, read the cgroup; then stop the servers."""
    _parent(hub).reset_peak()  # all learners together, from this phase's start
    load_before, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.monotonic()
    sampler = _BoxSampler(hub.task.pid, room_pid)
    sampler.start()
    go, rows = threading.Barrier(len(names)), {}
    threads = [threading.Thread(target=_learner, args=(hub, client, n, nb, go, rows))
               for n in names]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_learners = _parent(hub).peak_bytes()
    sampler.done.set()
    sampler.join()
    for n in names:
        client.stop_server(n)
    _wait_stopped(client, names)
    learners = [rows[n] for n in names]
    peaks = [r["cgroup_peak_bytes"] for r in learners]
    times = [r["notebook_s"] for r in learners if r["notebook_s"] is not None]
    return {
        "learners": learners,
        "started": started,
        "wall_s": time.monotonic() - t0,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "load_average_1min_peak": sampler.load_peak,
        "box": {
            "completed": sum(r["completed"] for r in learners),
            "learners": len(learners),
            "learner_peak_max_bytes": max(peaks),
            "learner_peak_median_bytes": sorted(peaks)[len(peaks) // 2],
            "all_learners_cgroup_peak_bytes": all_learners,
            "box_used_peak_over_baseline_bytes": sampler.used_peak - sampler.baseline,
            "room_server_rss_peak_bytes": sampler.room_peak,
            "hub_and_proxy_rss_peak_bytes": sampler.hub_peak,
            "notebook_s_min": min(times) if times else None,
            "notebook_s_max": max(times) if times else None,
            "spawn_s_min": min(r["spawn_s"] or 0 for r in learners),
            "spawn_s_max": max(r["spawn_s"] or 0 for r in learners),
            "oom_kills": sum(r["oom_kills"] for r in learners),
            "kernels_that_imported_torch": sum(
                bool((r.get("kernel") or {}).get("torch")) for r in learners
            ),
        },
    }


def _learner(hub, client: HubClient, name: str, nb, go: threading.Barrier, rows: dict) -> None:
    row = {"learner": name, "spawn_s": None, "notebook_s": None, "completed": 0, "errors": []}
    go.wait()
    try:
        row["spawn_s"] = client.start_server(name, timeout=900)
        run = run_notebook(hub.url, name, client.token_for(name), nb, timeout=2400)
        row.update(notebook_s=run.wall_s, completed=int(not run.errors), errors=run.errors,
                   cells=run.cells, kernel=_kernel_report(run.stdout))  # fmt: skip
    except Exception as e:  # a learner's failure is a result, not the end of the benchmark
        row["errors"].append(f"{type(e).__name__}: {e}")
    group = hub.group(name)
    row.update(cgroup_peak_bytes=group.peak_bytes(), oom_kills=group.oom_kills(),
               throttled_periods=group.throttled_periods())  # fmt: skip
    rows[name] = row


def _parent(hub):
    from llamalab.workshop.cgroups import existing_group

    return existing_group(hub.group_prefix)


def _wait_stopped(client: HubClient, names: list[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not any(client.api("GET", f"/users/{n}").get("servers") for n in names):
            return
        time.sleep(0.5)


class _BoxSampler(threading.Thread):
    """The box's memory in use (MemTotal − MemAvailable) and two process trees' RSS, at 5 Hz."""

    def __init__(self, hub_pid: int, room_pid: int):
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.baseline = self.used_peak = _used()
        self.hub_peak = self.room_peak = 0
        self.load_peak = os.getloadavg()[0]
        self.hub, self.room = psutil.Process(hub_pid), psutil.Process(room_pid)

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.used_peak = max(self.used_peak, _used())
            self.room_peak = max(self.room_peak, _tree_rss(self.room))
            self.hub_peak = max(self.hub_peak, _tree_rss(self.hub, skip_sessions=True))
            self.load_peak = max(self.load_peak, os.getloadavg()[0])


def _used() -> int:
    vm = psutil.virtual_memory()
    return vm.total - vm.available


def _tree_rss(proc: psutil.Process, skip_sessions: bool = False) -> int:
    """RSS of a process and its children (the hub's: its own session only, so the proxy counts
    and learners' servers, which run in sessions of their own, do not)."""
    try:
        tree = [proc, *proc.children(recursive=True)]
        sid = os.getsid(proc.pid)
        return sum(p.memory_info().rss for p in tree if not skip_sessions or _sid(p) == sid
                   or "configurable-http-proxy" in " ".join(p.cmdline()))  # fmt: skip
    except psutil.Error:
        return 0


def _sid(p: psutil.Process) -> int:
    try:
        return os.getsid(p.pid)
    except OSError:
        return -1


def _notebook(path: Path, room: bool):
    """Notebook `path` with the report cell last; without the room, a first cell unsets it."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [*([] if room else [nbformat.v4.new_code_cell(NO_ROOM)]), *nb.cells,
                nbformat.v4.new_code_cell(REPORT)]  # fmt: skip
    nb.metadata["llamalab_name"] = path.name
    return nb


def _kernel_report(stdout: str) -> dict | None:
    """The report cell's line: torch imported or not, the model's device, the tokens generated."""
    lines = [line for line in stdout.splitlines() if line.startswith('{"torch"')]
    return json.loads(lines[-1]) if lines else None


def _machine() -> dict:
    hw = llamalab.hardware()
    return {"cpu": hw.cpu, "cores": hw.cores, "memory_bytes": psutil.virtual_memory().total}


def _version(dist: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(dist)


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--learners", type=int, default=5)
    p.add_argument("--memory", default="2G", help="each learner's memory limit")
    p.add_argument("--cpus", type=float, default=1.0, help="each learner's CPU quota")
    p.add_argument("--room-threads", type=int, default=1, help="the room server's threads")
    p.add_argument("--notebook", type=Path, default=ROOT / "notebooks" / "00_quickstart.ipynb")
    p.add_argument("--phases", nargs="+", default=["room", "local"], choices=["room", "local"])
    return p.parse_args()


if __name__ == "__main__":
    main()
