"""A loaded model and its measured generations: text, time to first token, decode speed, peak memory."""
from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from ..catalog import ModelCard, Scheme
from ..errors import PromptTooLong
from ..estimate import Estimate
from ..monitor import Monitor, count_tokens
from .engine import Engine, Sampling
from .meter import release_freed_memory


@dataclass(frozen=True)
class Generation:
    """One measured generation. Times in seconds; `peak_memory_kind` says what the peak counts."""
    text: str
    tokens: int                 # new tokens generated (an end-of-sequence token included)
    prompt_tokens: int
    ttft_s: float               # call → first new token (chat template + tokenization + prefill)
    prefill_s: float            # engine start → first new token (the prompt's forward pass + sampling)
    decode_tokens_per_s: float  # (tokens − 1) / (last token time − first token time)
    total_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    finish_reason: str          # "stop" (end of sequence), "length" (max_new_tokens) or "stopped" (user)
    model: str = ""
    scheme: str = ""
    token_ids: tuple[int, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("token_ids")
        return d


@dataclass
class LoadedModel:
    """A model in memory with the facts of its loading. `generate` and `stream` measure every call."""
    engine: Engine
    card: ModelCard
    scheme: Scheme
    device: str
    load_seconds: float
    footprint_bytes: int        # measured bytes of weights and buffers in memory
    memory_delta_bytes: int     # RSS (CPU) or CUDA-allocated (GPU) growth during the load
    memory_delta_kind: str
    estimate: Estimate
    load_peak_bytes: int = 0    # peak growth of the same measure while loading (quantize-on-load copies)
    path: str = ""
    backend: str = ""
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def model(self):
        return getattr(self.engine, "model", None)

    @property
    def tokenizer(self):
        return getattr(self.engine, "tokenizer", None)

    @property
    def estimate_error_pct(self) -> float:
        """Estimated weight bytes vs measured footprint, in percent of the measured value."""
        return 100.0 * (self.estimate.breakdown["weights"] - self.footprint_bytes) / self.footprint_bytes

    def to_dict(self) -> dict:
        return {"model": self.card.name, "scheme": self.scheme.name, "device": self.device,
                "backend": self.backend, "load_seconds": self.load_seconds, "footprint_bytes": self.footprint_bytes,
                "estimated_weights_bytes": self.estimate.breakdown["weights"],
                "estimate_error_pct": self.estimate_error_pct, "memory_delta_bytes": self.memory_delta_bytes,
                "memory_delta_kind": self.memory_delta_kind, "load_peak_bytes": self.load_peak_bytes,
                "estimated_load_peak_bytes": self.estimate.load_peak_bytes - self.estimate.breakdown["overhead"],
                "path": self.path}

    def stop(self) -> None:
        """End the generation in progress (from any thread) after the current token."""
        self._stop.set()

    def generate(self, prompt, max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 1.0,
                 top_k: int = 0, system: str | None = None, chat: bool | None = None,
                 stop_event: threading.Event | None = None, on_text: Callable[[str], None] | None = None,
                 min_new_tokens: int = 0, seed: int | None = None) -> Generation:
        """Generate from a string or chat messages; `on_text` gets each new piece of text as it comes."""
        t_call = time.perf_counter()
        ids = self.engine.encode(prompt, system=system, chat=chat)
        if len(ids) + max_new_tokens > self.engine.context_length:
            raise PromptTooLong(len(ids), max_new_tokens, self.engine.context_length)
        sampling = Sampling(max_new_tokens, temperature, top_p, top_k, min_new_tokens, seed)
        stop = stop_event or self._stop
        with self._lock:            # one generation at a time per model
            self._stop.clear()
            return self._run(ids, sampling, stop, on_text, t_call)

    def _run(self, ids, sampling, stop, on_text, t_call) -> Generation:
        text = _TextEmitter(self.engine.decode, on_text)
        times: list[float] = []

        def on_token(token: int) -> None:
            times.append(time.perf_counter())
            count_tokens(1)
            text.add(token)

        peak = _PeakMemory(self.device)
        t_start = time.perf_counter()
        with peak:
            self.engine.generate(ids, sampling, on_token, stop.is_set)
        text.flush()
        t_end = time.perf_counter()
        n = len(times)
        decode = (n - 1) / (times[-1] - times[0]) if n > 1 and times[-1] > times[0] else 0.0
        reason = "stopped" if stop.is_set() and n < sampling.max_new_tokens else (
            "length" if n >= sampling.max_new_tokens else "stop")
        return Generation(
            text=self.engine.decode(text.ids), tokens=n, prompt_tokens=len(ids),
            ttft_s=(times[0] - t_call) if n else float("nan"), prefill_s=(times[0] - t_start) if n else float("nan"),
            decode_tokens_per_s=decode, total_s=t_end - t_call, peak_memory_bytes=peak.bytes,
            peak_memory_kind=peak.kind, finish_reason=reason, model=self.card.name, scheme=self.scheme.name,
            token_ids=tuple(text.ids))

    def stream(self, prompt, **kwargs) -> Iterator[str | Generation]:
        """Yield text pieces as they are generated, then the finished Generation.
        Closing the iterator early (or `stop()`) ends the generation."""
        pieces: queue.Queue = queue.Queue()
        result: dict = {}

        def work():
            try:
                result["generation"] = self.generate(prompt, on_text=pieces.put, **kwargs)
            except BaseException as e:   # re-raised in the caller's thread
                result["error"] = e
            pieces.put(None)

        worker = threading.Thread(target=work, name="llamalab-generate", daemon=True)
        worker.start()
        try:
            while (piece := pieces.get()) is not None:
                yield piece
        finally:
            if worker.is_alive():
                (kwargs.get("stop_event") or self._stop).set()
            worker.join()
        if "error" in result:
            raise result["error"]
        yield result["generation"]

    def unload(self) -> None:
        """Drop the weights and give the memory back (CUDA cache emptied too)."""
        self.engine.unload()
        release_freed_memory()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __repr__(self) -> str:
        return (f"LoadedModel({self.card.name}, scheme={self.scheme.name}, device={self.device}, "
                f"footprint={self.footprint_bytes / 1e6:.1f} MB, load={self.load_seconds:.1f} s)")


class _TextEmitter:
    """Turns token ids into text pieces as they come, never splitting a multi-byte character."""

    def __init__(self, decode, on_text):
        self.decode, self.on_text = decode, on_text
        self.ids: list[int] = []
        self.start = self.printed = 0

    def add(self, token: int) -> None:
        self.ids.append(token)
        if self.on_text:
            self._emit(final=False)

    def flush(self) -> None:
        if self.on_text:
            self._emit(final=True)

    def _emit(self, final: bool) -> None:
        window = self.decode(self.ids[self.start:])
        if window.endswith("\ufffd") and not final:
            return
        piece, self.printed = window[self.printed:], len(window)
        if window.endswith("\n"):       # restart the window on a line break: decoding stays O(line)
            self.start, self.printed = len(self.ids), 0
        if piece:
            self.on_text(piece)


class _PeakMemory:
    """Peak during a block: torch.cuda.max_memory_allocated on GPU, sampled process RSS on CPU."""

    def __init__(self, device: str):
        self.device, self.bytes = device, 0
        self.cuda = device.startswith("cuda")
        self.kind = "torch.cuda.max_memory_allocated" if self.cuda else "process RSS (peak of 20 Hz samples)"
        self.monitor = None if self.cuda else Monitor(interval=0.05)

    def __enter__(self):
        if self.cuda:
            import torch
            torch.cuda.reset_peak_memory_stats()
        else:
            self.monitor.start()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            import torch
            self.bytes = torch.cuda.max_memory_allocated()
        else:
            self.monitor.stop()
            self.bytes = self.monitor.peak_rss_bytes
