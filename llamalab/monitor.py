"""A background sampler of memory and speed, cheap enough to leave on.

    with Monitor(interval=0.25) as mon:
        loaded.generate("Hi")
    mon.samples[-1].rss_bytes

Generation code reports tokens with `count_tokens(n)`; every running Monitor turns those counts
into tokens/s per sample, so a live plot needs no wiring to the generator.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import psutil

_running: set["Monitor"] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class Sample:
    """One reading. `rss_bytes` is this process's resident memory; CUDA figures are torch's
    allocator counters (0 when no CUDA); `tokens_per_s` counts tokens reported since the last sample."""
    t: float
    rss_bytes: int
    cuda_allocated_bytes: int = 0
    cuda_reserved_bytes: int = 0
    tokens_per_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def count_tokens(n: int = 1) -> None:
    """Called by generation code for each token produced; feeds every running Monitor."""
    with _lock:
        for m in _running:
            m._tokens += n


def _cuda_memory() -> tuple[int, int]:
    torch = sys.modules.get("torch")   # never import torch just to sample
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0, 0
    return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()


class Monitor:
    """Samples every `interval` seconds in a daemon thread; `on_sample` is called with each Sample."""

    def __init__(self, interval: float = 0.25, on_sample: Callable[[Sample], None] | None = None,
                 max_samples: int = 100_000):
        self.interval, self.on_sample, self.max_samples = interval, on_sample, max_samples
        self.samples: list[Sample] = []
        self._proc = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tokens = 0
        self._t0 = 0.0

    def sample(self) -> Sample:
        now = time.perf_counter()
        with _lock:
            tokens, self._tokens = self._tokens, 0
        dt = now - (self._last if self.samples else self._t0)
        alloc, reserved = _cuda_memory()
        s = Sample(t=now - self._t0, rss_bytes=self._proc.memory_info().rss, cuda_allocated_bytes=alloc,
                   cuda_reserved_bytes=reserved, tokens_per_s=tokens / dt if dt > 0 else 0.0)
        self._last = now
        if len(self.samples) < self.max_samples:
            self.samples.append(s)
        if self.on_sample:
            self.on_sample(s)
        return s

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> "Monitor":
        if self._thread is None:
            self._t0 = self._last = time.perf_counter()
            self._stop.clear()
            with _lock:
                _running.add(self)
            self._thread = threading.Thread(target=self._run, name="llamalab-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> "Monitor":
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sample()
            with _lock:
                _running.discard(self)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def peak_rss_bytes(self) -> int:
        return max((s.rss_bytes for s in self.samples), default=0)

    def __enter__(self) -> "Monitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def to_records(self) -> list[dict]:
        return [s.to_dict() for s in self.samples]
