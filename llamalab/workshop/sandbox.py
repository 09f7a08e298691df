"""Folders read-only for a learner's server on the room's hub (the shared model cache, and the
cgroup files that hold its own limits): bind mounts made read-only in a mount namespace of the
server's own, so even a process running as root gets EROFS on a write. mount(2) and unshare(2)
through libc: util-linux's `unshare -m` + `mount -o remount,bind,ro` in one process.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18


def read_only(path: str) -> None:
    """From now on this process (and its children) see `path` read-only. Needs CAP_SYS_ADMIN (root).
    Call it in a freshly forked child (a preexec function): it changes the process's namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    p = os.fsencode(path)
    _check(libc.mount(p, p, None, MS_BIND | MS_REC, None), f"mount --rbind {path}")
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for point in _mounts_under(path):  # the bind and each mount inside it (cgroup controllers)
        _check(libc.mount(None, os.fsencode(point), None, flags, None), f"remount,ro {point}")


def _mounts_under(path: str) -> list[str]:
    """Mount points at or below `path`, outermost first (from /proc/self/mountinfo)."""
    top = os.path.realpath(path).rstrip("/") or "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == top or point.startswith(top + "/"):
                points.append(point)
    return sorted(set(points), key=len)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
