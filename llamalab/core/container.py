"""The limits of the container this process runs in: its cgroup's memory limit and use and its CPU
quota (cgroup v1 or v2, nested levels included: the lowest limit wins). psutil and os.cpu_count()
report the host's RAM and cores, which inside a 2 GB Binder or JupyterHub pod is memory the kernel's
OOM killer will not let the process have."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T", int, float)
V1_NO_LIMIT = 1 << 62  # v1 writes "none" as LONG_MAX rounded down to a page: 9223372036854771712


@dataclass(frozen=True)
class Limits:
    """What the process's cgroups allow. None: no limit at any level (or no cgroup found).
    `memory_used_bytes` counts as docker stats and the kubelet do: usage minus inactive file
    pages."""

    memory_limit_bytes: int | None = None
    memory_used_bytes: int | None = None
    cpu_quota: float | None = None  # CPUs' worth of time per period (cpu.max, cfs_quota_us)
    version: int = 0  # the cgroup version the memory figures come from (1, 2; 0: none found)

    @property
    def memory_available_bytes(self) -> int | None:
        if self.memory_limit_bytes is None:
            return None
        return max(0, self.memory_limit_bytes - (self.memory_used_bytes or 0))


# Where each version keeps its memory figures: limit, usage, and the memory.stat key of the
# inactive file pages that usage leaves out.
MEMORY_FILES = {
    1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
    2: ("memory.max", "memory.current", "inactive_file"),
}


def limits(proc: Path = Path("/proc/self"), root: Path = Path("/")) -> Limits:
    """This process's limits (`proc`, `root`: another process's files or a fake tree, for tests)."""
    try:
        mounts = _mounts((proc / "mountinfo").read_text())
        groups = _groups((proc / "cgroup").read_text())
    except OSError:
        return Limits()
    v2 = _cgroup_dir(mounts, groups, "", root)
    memory_dir = _cgroup_dir(mounts, groups, "memory", root)
    version = 1 if memory_dir else 2 if v2 else 0
    folder = memory_dir or v2
    memory = _memory(folder, version) if folder else None
    cpu_dir = _cgroup_dir(mounts, groups, "cpu", root)
    quota = _quota(cpu_dir, _v1_quota) if cpu_dir else _quota(v2, _v2_quota) if v2 else None
    limit, used = memory or (None, None)
    return Limits(limit, used, quota, version)


@dataclass(frozen=True)
class MemoryGroup:
    """The process's memory cgroup: its folder and the cgroup version (found once, read often: the
    memory probe samples it at 20 Hz)."""

    folder: Path
    version: int

    def used_bytes(self) -> int | None:
        """What the container counts against its limit, limit or not: usage minus inactive file
        pages (docker stats, the kubelet). Every process of the cgroup counts, and so do file pages
        it read (a checkpoint's page cache) until the kernel reclaims them."""
        _, usage_file, inactive = MEMORY_FILES[self.version]
        usage = _read(self.folder / usage_file)
        if usage is None or not usage.isdigit():
            return None
        return max(0, int(usage) - _stat(self.folder / "memory.stat", inactive))


def memory_group(proc: Path = Path("/proc/self"), root: Path = Path("/")) -> MemoryGroup | None:
    """This process's memory cgroup (v1's memory controller, else v2's unified folder); None
    outside one."""
    try:
        mounts = _mounts((proc / "mountinfo").read_text())
        groups = _groups((proc / "cgroup").read_text())
    except OSError:
        return None
    for controller, version in (("memory", 1), ("", 2)):
        found = _cgroup_dir(mounts, groups, controller, root)
        if found:
            return MemoryGroup(found[0], version)
    return None


def own_group(
    controller: str, proc: Path = Path("/proc/self"), root: Path = Path("/")
) -> Path | None:
    """This process's cgroup folder for a v1 `controller` ("memory", "cpu"), or v2's unified
    folder for ""; None where there is none."""
    try:
        mounts = _mounts((proc / "mountinfo").read_text())
        groups = _groups((proc / "cgroup").read_text())
    except OSError:
        return None
    found = _cgroup_dir(mounts, groups, controller, root)
    return found[0] if found else None


def usable_cpus(quota: float | None = None) -> int:
    """CPUs this process may use: its affinity set, capped by the cgroup's quota (rounded up, as
    the JVM counts it) when there is one."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(n, math.ceil(quota))) if quota else n


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(root inside the cgroup fs, mount point, fs type, super options) of each cgroup mount."""
    out = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        pre, post = left.split(), right.split()
        if len(pre) >= 5 and len(post) >= 3 and post[0] in ("cgroup", "cgroup2"):
            out.append((pre[3], pre[4], post[0], set(post[2].split(","))))
    return out


def _groups(cgroup: str) -> dict[str, str]:
    """Controller (or "" for v2's unified line) → the process's cgroup path."""
    out = {}
    for line in cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


def _resolve(mount_root: str, mount_point: str, path: str, root: Path) -> tuple[Path, Path] | None:
    """(the process's cgroup folder, the mount's folder), or None where the path lies outside
    the mount (a process moved out of its namespace)."""
    if path == mount_root or mount_root == "/":
        rel = "" if path == mount_root else path
    elif path.startswith(mount_root.rstrip("/") + "/"):
        rel = path[len(mount_root.rstrip("/")) :]
    else:
        return None
    top = root / mount_point.lstrip("/")
    return top / rel.lstrip("/"), top


def _cgroup_dir(mounts, groups, controller: str, root: Path) -> tuple[Path, Path] | None:
    """The process's folder for a v1 `controller`, or for v2's unified hierarchy (`controller`
    "")."""
    path = groups.get(controller)
    if path is None:
        return None
    for mroot, point, fstype, opts in mounts:
        if fstype == ("cgroup" if controller else "cgroup2") and (
            not controller or controller in opts
        ):
            return _resolve(mroot, point, path, root)
    return None


def _levels(leaf: Path, top: Path) -> list[Path]:
    """The leaf folder and each parent up to the mount's folder."""
    out = [leaf]
    while out[-1] != top and top in out[-1].parents:
        out.append(out[-1].parent)
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _stat(path: Path, key: str) -> int:
    for line in (_read(path) or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return 0


def _lowest(values: Iterable[T | None]) -> T | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def _memory(folder: tuple[Path, Path], version: int) -> tuple[int, int] | None:
    """(the lowest limit up the hierarchy, usage minus inactive file pages), or None without a
    limit. v1's "no limit" is a huge number, v2's the word "max"."""
    limit_file = MEMORY_FILES[version][0]

    def limit(d: Path) -> int | None:
        v = _read(d / limit_file)
        return int(v) if v and v.isdigit() and 0 < int(v) < V1_NO_LIMIT else None

    leaf, top = folder
    lowest = _lowest(limit(d) for d in _levels(leaf, top))
    if lowest is None:
        return None
    return lowest, MemoryGroup(leaf, version).used_bytes() or 0


def _quota(folder: tuple[Path, Path], read) -> float | None:
    """The lowest CPU quota up the hierarchy; `read(folder)` gives (quota, period) as text, where a
    quota that is not a number ("-1", "max") means none at that level."""

    def quota(d: Path) -> float | None:
        q, p = read(d)
        return int(q) / int(p) if q.isdigit() and p.isdigit() and int(p) > 0 else None

    return _lowest(quota(d) for d in _levels(*folder))


def _v1_quota(d: Path) -> tuple[str, str]:
    return _read(d / "cpu.cfs_quota_us") or "", _read(d / "cpu.cfs_period_us") or ""


def _v2_quota(d: Path) -> tuple[str, str]:
    q, _, p = (_read(d / "cpu.max") or "max").partition(" ")
    return q, p
