"""What a machine has: `GPU` (a card's memory and bandwidth, the type the catalog's GPU table uses
too) and `Hardware`, this machine read now (CPU, RAM, CUDA devices) as this process may use it:
inside a container, its cgroup's memory limit and CPU quota, not the host's."""

from __future__ import annotations

import functools
import glob
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

import psutil

from . import container, validate
from .errors import InvalidSetting
from .units import GiB, MiB, both


@dataclass(frozen=True)
class GPU:
    """A GPU model from the catalog (or one CUDA device of this machine):
    its memory and bandwidth."""

    name: str
    display: str
    memory_bytes: int
    bandwidth_bytes_s: float = 0.0
    kind: str = "gpu"
    bf16_tflops: float = 0.0
    source: str = ""
    fp16_tflops: float = 0.0  # given only for cards without bf16 (bf16_tflops 0)
    cuda_capability: str = ""  # "major.minor": which kernels and dtypes it runs
    memory_source: str = ""  # where memory_bytes was read (nvidia-smi's Total, or mem_get_info)

    @property
    def memory_mib(self) -> float:
        """Memory in MiB, the unit nvidia-smi prints."""
        return self.memory_bytes / MiB


@dataclass(frozen=True)
class Hardware:
    """This machine: CPU, RAM (total and available now) and any CUDA GPUs. `cpu_bf16`: the CPU
    has bf16 instructions (AVX512-BF16 or AMX); without them torch's bf16 matrix products run
    several times slower than fp32 on the CPU, so fp32 is the faster float there. Inside a
    container `ram_bytes`, `ram_available_bytes` and `cores` are what its cgroup allows
    (`container_limit_bytes`, `cpu_quota`); `host_ram_bytes` is the host's RAM."""

    cpu: str
    cores: int
    ram_bytes: int
    ram_available_bytes: int
    gpus: tuple[GPU, ...] = field(default=())
    cuda_free_bytes: tuple[int, ...] = ()
    cpu_bf16: bool = False
    host_ram_bytes: int = 0
    container_limit_bytes: int | None = None
    cpu_quota: float | None = None

    @property
    def default_device(self) -> str:
        return "cuda" if self.gpus else "cpu"

    def budget_bytes(self, device: str | None = None) -> int:
        """Memory free for a model now: the first GPU's free memory, else available RAM."""
        device = validate.text("device", device or self.default_device)
        if device.startswith("cuda") and self.gpus:
            idx = device.partition(":")[2]
            if idx and not (idx.isdecimal() and int(idx) < len(self.gpus)):
                raise InvalidSetting(
                    f"device={device!r}: this machine has {len(self.gpus)} CUDA device(s).",
                    f"Use 'cuda' or 'cuda:N' with N below {len(self.gpus)}.",
                )
            return self.cuda_free_bytes[int(idx or 0)]
        return self.ram_available_bytes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gpus"] = [asdict(g) for g in self.gpus]
        return d

    def __str__(self) -> str:
        lines = [
            f"CPU: {self.cpu} ({self.cores} cores, "
            f"{'bf16 instructions' if self.cpu_bf16 else 'no bf16 instructions: fp32 is faster'})",
            f"RAM: {self._ram()}, {self.ram_available_bytes / GiB:.1f} GiB available",
        ]
        lines += [
            f"GPU {i}: {g.display}, {g.memory_mib:.0f} MiB = {both(g.memory_bytes)} total "
            f"({f / MiB:.0f} MiB free)"
            for i, (g, f) in enumerate(zip(self.gpus, self.cuda_free_bytes))
        ]
        return "\n".join(lines if self.gpus else lines + ["GPU: none (CUDA not available)"])

    def _ram(self) -> str:
        if self.container_limit_bytes is None:
            return f"{self.ram_bytes / GiB:.1f} GiB total"
        return (
            f"{self.container_limit_bytes / GiB:.1f} GiB container limit of "
            f"{self.host_ram_bytes / GiB:.1f} GiB host"
        )


@functools.cache  # the CPU does not change while Python runs; hardware() is called often
def _cpuinfo(key: str) -> str | None:
    """The first `key : value` of /proc/cpuinfo (Linux), else None."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    return set((_cpuinfo("flags") or "").split())


def cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX). Without it torch's bf16
    matrix products take a scalar fallback: several times slower than fp32 (a QLoRA step here:
    over 50 s in bf16, 23 s in fp32)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def compute_dtype(device: str) -> str:
    """The dtype that 16-bit-capable code should compute in on `device`: bfloat16 on a GPU or a
    CPU with bf16 instructions, float32 on other CPUs (where bf16 is slower than fp32)."""
    return "bfloat16" if device.startswith("cuda") or cpu_bf16() else "float32"


def cuda_devices() -> tuple[tuple[GPU, ...], tuple[int, ...]]:
    """CUDA GPUs via torch, only if torch is installed; never initialises CUDA when it is absent."""
    try:
        import torch
    except ImportError:
        return (), ()
    if not torch.cuda.is_available():
        return (), ()
    devs, free = [], []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        f, total = torch.cuda.mem_get_info(i)
        devs.append(
            GPU(
                name=f"cuda:{i}",
                display=p.name,
                memory_bytes=total,
                kind="gpu",
                memory_source="torch.cuda.mem_get_info",
            )
        )
        free.append(f)
    return tuple(devs), tuple(free)


def default_device() -> str:
    """'cuda' where this machine has an NVIDIA GPU, else 'cpu' — without importing torch (so
    arithmetic such as `estimate(device="auto")` stays instant): torch's own answer when it is
    already imported, else the driver's device files. `load(device="auto")` asks torch itself."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if glob.glob("/dev/nvidia[0-9]*") else "cpu"


@dataclass(frozen=True)
class Bandwidth:
    """Memory read bandwidth of this machine, measured: the best of `runs` (the least disturbed)."""

    bytes_per_s: float
    runs: tuple[float, ...]
    threads: int
    buffer_bytes: int

    def __str__(self) -> str:
        return (
            f"read bandwidth ≈ {self.bytes_per_s / 1e9:.1f} GB/s ({self.threads} threads, best of "
            f"{len(self.runs)}; runs {min(self.runs) / 1e9:.1f}–{max(self.runs) / 1e9:.1f})"
        )


@functools.cache  # one measurement per process and size: it takes about a second
def memory_bandwidth(buffer_mb: int = 256, threads: int | None = None, runs: int = 5) -> Bandwidth:
    """How fast this machine's RAM is read: numpy sums a buffer far beyond the caches on `threads`
    threads (default: the cores the container allows), `runs` times. Decode speed on a CPU is about
    this ÷ bytes per token (the speed law)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    validate.integer("buffer_mb", buffer_mb, 16, 65536)
    cores = container.usable_cpus(container.limits().cpu_quota)  # as hardware(), without torch
    threads = validate.integer("threads", threads or cores, 1, 1024)
    a = np.ones(buffer_mb * MiB // 8)
    parts = np.array_split(a, threads)
    speeds = []
    with ThreadPoolExecutor(threads) as pool:  # numpy releases the GIL while summing
        list(pool.map(np.sum, parts))
        for _ in range(validate.integer("runs", runs, 1, 100)):
            t = time.perf_counter()
            list(pool.map(np.sum, parts))
            speeds.append(a.nbytes / (time.perf_counter() - t))
    return Bandwidth(max(speeds), tuple(speeds), threads, a.nbytes)


def hardware() -> Hardware:
    vm = psutil.virtual_memory()
    gpus, free = cuda_devices()
    lim = container.limits()
    cap, room = lim.memory_limit_bytes, lim.memory_available_bytes
    return Hardware(
        cpu=cpu_name(),
        cores=container.usable_cpus(lim.cpu_quota),
        ram_bytes=min(vm.total, cap or vm.total),
        ram_available_bytes=vm.available if room is None else min(vm.available, room),
        gpus=gpus,
        cuda_free_bytes=free,
        cpu_bf16=cpu_bf16(),
        host_ram_bytes=vm.total,
        container_limit_bytes=cap if cap is not None and cap < vm.total else None,
        cpu_quota=lim.cpu_quota,
    )
