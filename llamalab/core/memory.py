"""The one memory probe: every memory figure the kit records is read here, and says what it counts.

    rss_bytes(pid)              a process's resident memory now (this process by default)
    resident(pid)               the same by kind: anonymous, file-backed, shared (`Resident`)
    container_bytes()           what this process's container counts against its limit
    reading(device)             this process now: RSS by kind, the container's figure, and CUDA
                                allocated/reserved on a GPU
    reset_peak(device), peak_bytes(device)
                                the high-water mark of this process (VmHWM, or CUDA's counter)
    with Growth(device) as g    what one block of work (a load) left allocated, and its peak:
                                g.bytes, g.peak_bytes
    with Peak(device) as p      the peak while a block runs (a generation): p.bytes, p.kind
    Monitor(pid, interval)      a daemon thread sampling a process (live plots, load tests,
                                training)
    release_freed_memory()      hand freed heap back to the OS so RSS shows what is alive

The kinds (`KINDS`) are the words every record's `*_kind` column uses, and what the by-kind figures
(`*_anon_bytes`, `*_file_bytes`, `*_container_bytes`) count. RSS mixes the kinds: after a
quantize-on-load a still-mapped checkpoint is file-backed RSS the estimate never counted, and
llama.cpp's weights are a mapped GGUF by design; the anonymous figure is what the process allocated.
Nothing here imports torch: CUDA counters are read only when the caller's process already imported
it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import psutil

from . import container

RSS = "process RSS"
RSS_GROWTH = "process RSS growth"
RSS_PEAK = "process RSS (peak of 20 Hz samples)"
CUDA_GROWTH = "torch.cuda.memory_allocated growth"
CUDA_PEAK = "torch.cuda.max_memory_allocated"
REMOTE = "not measured (remote engine)"
SERVER_PEAK = "server process RSS (peak of 20 Hz samples)"  # the kit's own server, on this machine
ANON = "anonymous resident memory (RssAnon: what the process allocated)"
FILE = "file-backed resident memory (RssFile: mapped files and shared libraries)"
SHMEM = "shared resident memory (RssShmem)"
CONTAINER = "container working set (its cgroup's usage minus inactive file pages)"
KINDS = (
    RSS,
    RSS_GROWTH,
    RSS_PEAK,
    CUDA_GROWTH,
    CUDA_PEAK,
    REMOTE,
    SERVER_PEAK,
    ANON,
    FILE,
    SHMEM,
    CONTAINER,
)

_CLEAR_REFS, _STATUS = "/proc/self/clear_refs", "/proc/self/status"


# ---------------------------------------------------------------- readings now


def rss_bytes(pid: int | None = None) -> int | None:
    """Resident memory of process `pid` (default: this one); None once it has ended."""
    try:
        return psutil.Process(pid or os.getpid()).memory_info().rss
    except psutil.Error:
        return None


def cuda_bytes() -> tuple[int, int]:
    """(allocated, reserved) by torch's CUDA allocator in this process;
    (0, 0) without CUDA in use."""
    torch = sys.modules.get("torch")  # never import torch just to read a counter
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0, 0
    return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()


@dataclass(frozen=True)
class Resident:
    """A process's resident memory by kind (/proc/<pid>/status): `anon_bytes` what it allocated
    (heap, tensors), `file_bytes` mapped files (shared libraries, a memory-mapped checkpoint or
    GGUF; the kernel may drop them under pressure), `shmem_bytes` shared memory. RSS is the sum."""

    anon_bytes: int
    file_bytes: int
    shmem_bytes: int

    @property
    def rss_bytes(self) -> int:
        return self.anon_bytes + self.file_bytes + self.shmem_bytes


STATUS_KEYS = {"RssAnon:": "anon_bytes", "RssFile:": "file_bytes", "RssShmem:": "shmem_bytes"}


def resident(pid: int | None = None) -> Resident | None:
    """Resident memory of process `pid` (default: this one) by kind; None once it has ended, or
    where the kernel does not say (not Linux)."""
    try:
        text = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        key, *value = line.split()
        if key in STATUS_KEYS and value:
            found[STATUS_KEYS[key]] = int(value[0]) * 1024
    return Resident(**found) if len(found) == len(STATUS_KEYS) else None


@cache
def _group(pid: int | None) -> container.MemoryGroup | None:
    return container.memory_group(Path(f"/proc/{pid or 'self'}"))


def container_bytes(pid: int | None = None) -> int | None:
    """What the memory cgroup of process `pid` (default: this one) counts against its limit: every
    process in it, and the file pages they read until the kernel reclaims them (None outside
    one)."""
    group = _group(pid)
    return group.used_bytes() if group else None


def mapped_ranges(path: str | Path, pid: int | None = None) -> list[tuple[int, int]]:
    """The address ranges where process `pid` (default: this one) maps the file `path`: a checkpoint
    left mapped after a quantize-on-load shows here, and as file-backed RSS."""
    target = str(Path(path).resolve())
    try:
        lines = Path(f"/proc/{pid or 'self'}/maps").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            out.append((start, end))
    return out


def reading(device: str = "cpu") -> dict:
    """This process now, as record columns: `rss_bytes`, its kinds (`rss_anon_bytes`,
    `rss_file_bytes`, `rss_shmem_bytes`), `container_bytes`, and CUDA allocated/reserved on a
    GPU."""
    r = resident()
    out = {
        "rss_bytes": rss_bytes(),
        "rss_anon_bytes": r.anon_bytes if r else None,
        "rss_file_bytes": r.file_bytes if r else None,
        "rss_shmem_bytes": r.shmem_bytes if r else None,
        "container_bytes": container_bytes(),
    }
    if device.startswith("cuda"):
        out["cuda_allocated_bytes"], out["cuda_reserved_bytes"] = cuda_bytes()
    return out


def reset_peak(device: str = "cpu") -> None:
    """Start a new peak: on a CPU the kernel's high-water mark (VmHWM) is set to the current RSS
    (Linux ≥ 4.0); on a GPU torch's peak counters are reset."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_bytes(device: str = "cpu") -> int | None:
    """The highest figure since start or the last `reset_peak()`: this process's RSS (VmHWM) on a
    CPU, torch.cuda.max_memory_allocated on a GPU (None where unknown)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated()
    try:
        with open(_STATUS) as f:
            line = next(x for x in f if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration):
        return None


def release_freed_memory() -> None:
    """Hand memory Python and torch already freed back to the OS (glibc keeps it otherwise), so RSS
    shows what is alive: after an int8/nf4 load RSS dropped by 0.3-0.45 GB here."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


MADV_DONTNEED = 4  # <sys/mman.h> on Linux


def drop_pages(ranges: list[tuple[int, int]]) -> None:
    """Drop this process's resident pages in each [start, end) address range (shrunk to whole
    pages): for mapped file pages nothing reads any more, such as the parts of a checkpoint
    already quantized. Their contents are gone from the process (a mapped file's are re-read on
    the next access), so only for memory no live object uses."""
    try:
        madvise = ctypes.CDLL("libc.so.6", use_errno=True).madvise
    except (OSError, AttributeError):  # not glibc: the pages stay until the mapping closes
        return
    page = os.sysconf("SC_PAGE_SIZE")
    for start, end in ranges:
        start, end = -(-start // page) * page, end // page * page
        if end > start:
            madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_DONTNEED)


# ---------------------------------------------------------------- one block of work


class Growth:
    """`with Growth(device) as g:` → `g.bytes` (what the block left allocated), `g.peak_bytes`
    (its peak growth) and `g.kind`: process RSS on CPU, torch's allocator on CUDA. The peak is this
    block's own (VmHWM or CUDA's peak counter are reset at the start), not the process's lifetime
    one. On a CPU also by kind: `g.anon_bytes` and `g.file_bytes` (growth of each that the block
    left: a checkpoint still mapped shows in the second), `g.anon_peak_bytes` (the peak growth of
    20 Hz anonymous samples) and `g.container_bytes` (the container's figure after it; None
    outside one, and on a GPU)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.cuda = device.startswith("cuda")
        self.kind = CUDA_GROWTH if self.cuda else RSS_GROWTH
        self.before = self.bytes = self.peak_bytes = 0
        self.anon_bytes: int | None = None
        self.file_bytes: int | None = None
        self.anon_peak_bytes: int | None = None
        self.container_bytes: int | None = None
        self.monitor = None if self.cuda else Monitor(interval=0.05)
        self._resident: Resident | None = None

    def __enter__(self) -> Growth:
        release_freed_memory()  # else the block reuses resident free memory and RSS understates it
        reset_peak(self.device)
        self.before = self._now()
        if self.monitor:
            self._resident = resident()
            self.monitor.start()
        return self

    def __exit__(self, *exc) -> None:
        peak = peak_bytes(self.device)
        if self.monitor:
            self.monitor.stop()
        release_freed_memory()
        self.bytes = self._now() - self.before
        # ≥ 0: the block's start is part of it (the kernel syncs RSS counters in batches, so the
        # high-water mark can read a few pages below the RSS read just after its reset)
        self.peak_bytes = max(self.bytes, (peak or 0) - self.before, 0)
        if self.monitor and self._resident:
            self._by_kind(self._resident, resident())

    def _by_kind(self, before: Resident, after: Resident | None) -> None:
        if after is None or self.monitor is None:
            return
        self.anon_bytes = after.anon_bytes - before.anon_bytes
        self.file_bytes = after.file_bytes - before.file_bytes
        peak = self.monitor.peak_anon_bytes - before.anon_bytes
        self.anon_peak_bytes = max(self.anon_bytes, peak)
        self.container_bytes = container_bytes()

    def _now(self) -> int:
        return cuda_bytes()[0] if self.cuda else rss_bytes() or 0


class Peak:
    """`with Peak(device, remote) as p:` → `p.bytes`, `p.kind`: the peak while the block runs.
    torch.cuda.max_memory_allocated on a GPU, the highest of 20 Hz RSS samples on a CPU (a
    generation is too short for VmHWM to be reset per call), nothing for a remote engine
    (its memory is elsewhere) unless `server_pid` names its process on this machine (the kit's
    own server): then that process's RSS samples. On a CPU also the peaks by kind, from the same
    samples: `p.anon_bytes`, `p.file_bytes`, `p.container_bytes` (None on a GPU, remote, or
    outside a cgroup)."""

    def __init__(self, device: str = "cpu", remote: bool = False, server_pid: int | None = None):
        self.device = device
        self.cuda = device.startswith("cuda") and not remote
        sampled = not self.cuda and (not remote or server_pid is not None)
        if remote:
            self.kind = SERVER_PEAK if server_pid is not None else REMOTE
        else:
            self.kind = CUDA_PEAK if self.cuda else RSS_PEAK
        self.bytes: int | None = 0 if sampled or self.cuda else None
        self.anon_bytes: int | None = None
        self.file_bytes: int | None = None
        self.container_bytes: int | None = None
        pid = server_pid if remote else None
        self.monitor = Monitor(interval=0.05, pid=pid) if sampled else None

    def __enter__(self) -> Peak:
        if self.cuda:
            reset_peak(self.device)
        elif self.monitor:
            self.monitor.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.bytes = peak_bytes(self.device)
        elif self.monitor:
            self.monitor.stop()
            m = self.monitor
            self.bytes = m.peak_rss_bytes
            self.anon_bytes, self.file_bytes = m.peak_anon_bytes, m.peak_file_bytes
            self.container_bytes = m.peak_container_bytes

    @property
    def so_far(self) -> int | None:
        """The peak up to now, read from any thread while the block runs: the same measure `bytes`
        holds at the end (None for a remote engine, and on a CPU before the first sample)."""
        if self.cuda:
            return peak_bytes(self.device)
        if self.monitor is not None:
            return self.monitor.peak_rss_bytes or None
        return self.bytes


# ---------------------------------------------------------------- the sampler

_running: set[Monitor] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class Sample:
    """One reading of a process: `rss_bytes` its resident memory, `rss_anon_bytes` and
    `rss_file_bytes` two of its kinds (0 where the kernel does not say), `container_bytes` what its
    container counts (None outside one); CUDA figures are torch's allocator counters (0 without
    CUDA, or for another process); `tokens_per_s` counts the tokens this process's generations
    reported since the previous sample (0 for another process)."""

    t: float
    rss_bytes: int
    cuda_allocated_bytes: int = 0
    cuda_reserved_bytes: int = 0
    tokens_per_s: float = 0.0
    rss_anon_bytes: int = 0
    rss_file_bytes: int = 0
    container_bytes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def count_tokens(n: int = 1) -> None:
    """Called by generation code for each token produced; feeds every running Monitor
    of this process."""
    with _lock:
        for m in _running:
            m._tokens += n


class Monitor:
    """Samples process `pid` (default: this one) every `interval` seconds in a daemon thread;
    `on_sample(sample)` is called with each. A live plot, a load test's server and a training run
    all read memory over time through it.

        with Monitor(interval=0.25) as mon:
            loaded.generate("Hi")
        mon.samples[-1].rss_bytes, mon.peak_rss_bytes
    """

    def __init__(
        self,
        interval: float = 0.25,
        on_sample: Callable[[Sample], None] | None = None,
        max_samples: int = 100_000,
        pid: int | None = None,
    ):
        self.interval, self.on_sample, self.max_samples = interval, on_sample, max_samples
        self.pid = pid or os.getpid()
        self.own = self.pid == os.getpid()
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tokens = 0
        self._t0 = self._last = 0.0

    def sample(self) -> Sample | None:
        """Take one sample now (None once the process has ended)."""
        now = time.perf_counter()
        with _lock:
            tokens, self._tokens = self._tokens, 0
        kinds = resident(self.pid)
        rss = kinds.rss_bytes if kinds else rss_bytes(self.pid)
        if rss is None:
            return None
        dt = now - self._last
        alloc, reserved = cuda_bytes() if self.own else (0, 0)
        s = Sample(
            now - self._t0,
            rss,
            alloc,
            reserved,
            tokens / dt if dt > 0 else 0.0,
            kinds.anon_bytes if kinds else 0,
            kinds.file_bytes if kinds else 0,
            container_bytes(None if self.own else self.pid),
        )
        self._last = now
        if len(self.samples) < self.max_samples:
            self.samples.append(s)
        if self.on_sample:
            self.on_sample(s)
        return s

    def start(self) -> Monitor:
        if self._thread is None:
            self._t0 = self._last = time.perf_counter()
            self._stop.clear()
            if self.own:
                with _lock:
                    _running.add(self)
            self._thread = threading.Thread(target=self._run, name="llamalab-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> Monitor:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sample()
            with _lock:
                _running.discard(self)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def peak_rss_bytes(self) -> int:
        return max((s.rss_bytes for s in self.samples), default=0)

    @property
    def peak_anon_bytes(self) -> int:
        return max((s.rss_anon_bytes for s in self.samples), default=0)

    @property
    def peak_file_bytes(self) -> int:
        return max((s.rss_file_bytes for s in self.samples), default=0)

    @property
    def peak_container_bytes(self) -> int | None:
        found = [s.container_bytes for s in self.samples if s.container_bytes is not None]
        return max(found, default=None)

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def to_records(self) -> list[dict]:
        return [s.to_dict() for s in self.samples]
