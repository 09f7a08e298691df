"""A child cgroup with enforced limits, one per learner's Jupyter server on the room's hub: memory
(past it the kernel's OOM killer acts inside the group, as in a 2 GB Binder pod) and CPU time (a CFS
quota), plus the group's peak memory, OOM kills and throttled periods. cgroup v1's memory and cpu
hierarchies, as on this kind of machine; on a cgroup v2 host use JupyterHub's systemdspawner
(MemoryMax=, CPUQuota=) instead, which this module does not replace.

Kernel interface: Documentation/admin-guide/cgroup-v1/memory.rst and scheduler/sched-bwc.rst in
torvalds/linux.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ..core.container import own_group
from ..core.errors import LlamalabError

PERIOD_US = 100_000  # CFS period: the kernel's default, 100 ms


class CgroupError(LlamalabError):
    """No cgroup this process may create child groups in."""


@dataclass(frozen=True)
class LimitedGroup:
    """A cgroup (a folder per hierarchy) holding one learner's processes under a memory and a CPU
    limit. Made by `limited_group()`; every process it holds was started into it by the hub."""

    name: str
    memory_dir: Path
    cpu_dir: Path
    memory_limit_bytes: int
    cpus: float

    def add(self, pid: int) -> None:
        """Move process `pid` (and the children it starts later) into the group."""
        for folder in (self.memory_dir, self.cpu_dir):
            (folder / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        """The processes in the group now."""
        text = _read(self.memory_dir / "cgroup.procs")
        return [int(p) for p in text.split()] if text else []

    def peak_bytes(self) -> int:
        """The group's high-water mark of charged memory (memory.max_usage_in_bytes): its
        processes' anonymous memory and the file pages they were first to read."""
        return int(_read(self.memory_dir / "memory.max_usage_in_bytes") or 0)

    def reset_peak(self) -> None:
        """Start the high-water mark again from the usage now (a group not made yet starts at 0)."""
        if self.memory_dir.is_dir():
            (self.memory_dir / "memory.max_usage_in_bytes").write_text("0")

    def usage_bytes(self) -> int:
        return int(_read(self.memory_dir / "memory.usage_in_bytes") or 0)

    def oom_kills(self) -> int:
        """Processes the OOM killer ended inside this group (its limit reached)."""
        return _key(_read(self.memory_dir / "memory.oom_control"), "oom_kill")

    def throttled_periods(self) -> int:
        """CFS periods in which the group used up its CPU quota and waited."""
        return _key(_read(self.cpu_dir / "cpu.stat"), "nr_throttled")

    def remove(self) -> None:
        """Kill what is left in the group (by PID: only processes the hub started into it), then
        remove its folders."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for folder in (self.memory_dir, self.cpu_dir):
            for _ in range(50):  # a killed process leaves the group when the kernel reaps it
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    _pause()


def limited_group(name: str, memory_limit_bytes: int, cpus: float) -> LimitedGroup:
    """Create (or reuse) the child group `name` ("llamalab-hub-…/alice") under this process's own
    v1 cgroups, with its memory limit and CPU quota written; CgroupError says why not."""
    if memory_limit_bytes < 64 * 2**20:
        raise CgroupError(
            f"A memory limit of {memory_limit_bytes} bytes cannot hold a Jupyter server.",
            "Give each learner at least 512M (the course's notebooks are checked under 2G).",
        )
    memory, cpu = own_group("memory"), own_group("cpu")
    if memory is None or cpu is None:
        raise CgroupError(
            "This machine has no cgroup v1 memory and cpu hierarchies to put learners' servers in "
            "(a cgroup v2 host, or not Linux).",
            "On a cgroup v2 host use JupyterHub's systemdspawner with mem_limit and cpu_limit "
            "(pip install jupyterhub-systemdspawner), or the Kubernetes values in docs/jupyterhub.",
        )
    memory_dir, cpu_dir = memory / name, cpu / name
    try:
        for folder in (memory_dir, cpu_dir):
            folder.mkdir(parents=True, exist_ok=True)
        _write_limits(memory_dir, cpu_dir, memory_limit_bytes, cpus)
    except OSError as e:
        raise CgroupError(
            f"Cannot create the cgroup {memory_dir} with its limits ({e.strerror}).",
            "Start the hub as root, or in a cgroup delegated to its user (systemd-run --user "
            "--scope -p Delegate=yes …); without it learners' limits would not be enforced.",
        ) from None
    return LimitedGroup(name, memory_dir, cpu_dir, memory_limit_bytes, cpus)


def _write_limits(memory_dir: Path, cpu_dir: Path, limit: int, cpus: float) -> None:
    (memory_dir / "memory.limit_in_bytes").write_text(str(limit))
    (memory_dir / "memory.max_usage_in_bytes").write_text("0")  # a reused group starts afresh
    (cpu_dir / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (cpu_dir / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpus * PERIOD_US))))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _key(text: str, key: str) -> int:
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == key and v.strip().isdigit():
            return int(v)
    return 0


def _pause() -> None:
    import time

    time.sleep(0.02)


def existing_group(name: str, memory_limit_bytes: int = 0, cpus: float = 0.0) -> LimitedGroup:
    """A handle on the child group `name` as it is (nothing written: its peak is kept)."""
    memory, cpu = own_group("memory"), own_group("cpu")
    if memory is None or cpu is None:
        raise CgroupError("No cgroup v1 memory and cpu hierarchies here.", "See limited_group().")
    return LimitedGroup(name, memory / name, cpu / name, memory_limit_bytes, cpus)
