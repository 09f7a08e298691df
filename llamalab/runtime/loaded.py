"""A loaded model and its measured generations: text, time to first token, decode speed, peak memory."""
from __future__ import annotations

import queue
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from .. import validate
from ..catalog import ModelCard, Scheme
from ..errors import InvalidSetting, LlamalabError, PromptTooLong
from ..estimate import Estimate
from ..monitor import Monitor, count_tokens
from . import torch_thread
from .engine import Engine, Sampling, Usage
from .meter import release_freed_memory

REMOTE_MEMORY_KIND = "not measured (remote engine)"
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Generation:
    """One measured generation. Times in seconds; `peak_memory_kind` says what the peak counts."""
    text: str
    new_tokens: int             # new tokens generated (an end-of-sequence token included)
    prompt_tokens: int | None   # None only for a remote engine that neither tokenizes nor reports usage
    ttft_s: float               # call → first new token (chat template + tokenization + prefill)
    prefill_s: float            # engine start → first new token (the prompt's forward pass + sampling)
    decode_tokens_per_s: float  # (new_tokens − 1) / (last token time − first token time)
    total_s: float
    peak_memory_bytes: int | None   # None for a remote engine (REMOTE_MEMORY_KIND)
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
    load_s: float
    weights_memory_bytes: int | None    # measured bytes of weights and buffers in memory (None: remote)
    load_memory_delta_bytes: int | None  # RSS (CPU) or CUDA-allocated (GPU) growth during the load
    load_memory_kind: str
    estimate: Estimate
    load_peak_bytes: int | None = 0     # peak growth of the same measure while loading (quantize-on-load copies)
    path: str = ""
    backend: str = ""
    adapter: str = ""                   # the peft adapter folder attached at load ('' when none)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _owner: int | None = field(default=None, init=False, repr=False)
    _unloaded: bool = field(default=False, init=False, repr=False)

    @property
    def is_loaded(self) -> bool:
        """False once `unload()` ran."""
        return not self._unloaded

    @property
    def model(self):
        return getattr(self.engine, "model", None)

    @property
    def tokenizer(self):
        return getattr(self.engine, "tokenizer", None)

    @property
    def estimate_error_pct(self) -> float | None:
        """Estimated weight bytes vs measured weights in memory, in percent of the measured value."""
        if not self.weights_memory_bytes:
            return None
        return 100.0 * (self.estimate.breakdown["weights"] - self.weights_memory_bytes) / self.weights_memory_bytes

    def to_dict(self) -> dict:
        return {"model": self.card.name, "scheme": self.scheme.name, "device": self.device,
                "backend": self.backend, "engine": self.engine.name, "load_s": self.load_s,
                "weights_memory_bytes": self.weights_memory_bytes,
                "estimated_weights_bytes": self.estimate.breakdown["weights"],
                "estimate_error_pct": self.estimate_error_pct, "load_memory_delta_bytes": self.load_memory_delta_bytes,
                "load_memory_kind": self.load_memory_kind, "load_peak_bytes": self.load_peak_bytes,
                "estimated_load_peak_bytes": self.estimate.load_peak_bytes - self.estimate.breakdown["overhead"],
                "path": self.path}

    def stop(self) -> None:
        """End the generation in progress (from any thread) after the current token."""
        self._stop.set()

    def generate(self, prompt, max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 1.0,
                 top_k: int = 0, system: str | None = None, chat: bool | None = None,
                 stop_event: threading.Event | None = None, on_text: Callable[[str], None] | None = None,
                 min_new_tokens: int = 0, seed: int | None = None) -> Generation:
        """Generate from a string or chat messages; `on_text` gets each new piece of text as it comes, on
        this thread (the torch thread only decodes tokens: text and callbacks never slow it down).
        Ctrl-C while waiting stops the generation after the current token, then raises KeyboardInterrupt."""
        kwargs = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                      system=system, chat=chat, stop_event=stop_event, min_new_tokens=min_new_tokens, seed=seed)
        if on_text is not None and not callable(on_text):
            raise InvalidSetting(f"on_text={on_text!r} is not callable.", "Pass a function taking a str, or None.")
        if on_text is not None and self._on_torch_thread():
            for item in self.stream(prompt, **kwargs):
                if isinstance(item, Generation):
                    return item
                on_text(item)
        text = _TextEmitter(self.engine.decode, on_text) if on_text is not None else None
        job, stop = self._prepare(prompt, sink=text and text.add, **kwargs)
        if self._on_torch_thread():
            return torch_thread.wait(torch_thread.submit(job), on_interrupt=stop.set)
        generation = job()              # inline: an engine with its own threads, or already on the torch thread
        if text is not None:
            text.flush()
        return generation

    def stream(self, prompt, **kwargs) -> Iterator[str | Generation]:
        """Yield text pieces as they are generated, then the finished Generation. Tokens are turned into
        text here, on the consumer's thread. Closing the iterator early (or `stop()`) ends the generation."""
        tokens: queue.SimpleQueue = queue.SimpleQueue()
        job, stop = self._prepare(prompt, sink=tokens.put, **kwargs)
        end = object()
        if self._on_torch_thread():
            future = torch_thread.submit(job)
        else:                           # inline on the torch thread, or an engine with its own threads
            future = _in_thread(job) if not torch_thread.is_torch_thread() else _done(job)
        future.add_done_callback(lambda _: tokens.put(end))
        pieces: list[str] = []
        text = _TextEmitter(self.engine.decode, pieces.append)
        try:
            while (token := tokens.get()) is not end:
                text.add(token)
                yield from _drain(pieces)
            text.flush()
            yield from _drain(pieces)
        finally:
            if not future.done():       # closed early, or Ctrl-C: end the generation and wait for it
                stop.set()
                _quietly(torch_thread.wait, future)
        yield future.result()

    def _on_torch_thread(self) -> bool:
        """Submit to the torch thread? Engines say so (llama.cpp runs its own thread pool and does not);
        already on the torch thread (a callback that generates) the job runs inline instead."""
        return self.engine.uses_torch_thread and not torch_thread.is_torch_thread()

    def _prepare(self, prompt, max_new_tokens=128, temperature=0.0, top_p=1.0, top_k=0, system=None, chat=None,
                 stop_event=None, min_new_tokens=0, seed=None, sink=None):
        """Check the arguments, encode the prompt here (the caller's thread), and return the job to run."""
        sampling = sampling_from(max_new_tokens, temperature, top_p, top_k, min_new_tokens, seed)
        check_prompt(prompt, system, chat)
        if stop_event is not None and not isinstance(stop_event, threading.Event):
            raise InvalidSetting(f"stop_event={stop_event!r} is not a threading.Event.", "Pass threading.Event().")
        if not self.is_loaded:
            raise LlamalabError("This model was unloaded.", "Load it again with llamalab.load().")
        t_call = time.perf_counter()
        ids = self.engine.encode(prompt, system=system, chat=chat)
        n = len(ids) if _are_token_ids(ids) else None
        if n is not None and n + sampling.max_new_tokens > self.engine.context_length:
            raise PromptTooLong(n, sampling.max_new_tokens, self.engine.context_length)
        stop = stop_event or self._stop
        return (lambda: self._locked_run(ids, n, sampling, stop, sink, t_call)), stop

    def _locked_run(self, ids, n_prompt, sampling, stop, sink, t_call) -> Generation:
        if self._owner == threading.get_ident():
            raise LlamalabError("generate() was called from inside this model's own generation (a callback).",
                                "Collect the text in the callback and generate again after the call returns.")
        with self._lock:                # one generation at a time per model
            self._owner = threading.get_ident()
            try:
                self._stop.clear()
                return self._run(ids, n_prompt, sampling, stop, sink, t_call)
            finally:
                self._owner = None

    def _run(self, ids, n_prompt, sampling, stop, sink, t_call) -> Generation:
        """The generation itself; `sink` gets each raw token (an id, or a text piece from a server)."""
        text = _TextEmitter(self.engine.decode, None)
        times: list[float] = []

        def on_token(token) -> None:
            times.append(time.perf_counter())
            count_tokens(1)
            text.add(token)
            if sink is not None:
                sink(token)

        peak = _PeakMemory(self.device, self.engine.remote)
        t_start = time.perf_counter()
        with peak:
            usage = self.engine.generate(ids, sampling, on_token, stop.is_set) or Usage()
        t_end = time.perf_counter()
        n = usage.new_tokens if usage.new_tokens is not None else len(times)
        decode = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        reason = "stopped" if stop.is_set() and n < sampling.max_new_tokens else (
            "length" if n >= sampling.max_new_tokens else "stop")
        return Generation(
            text=text.text(), new_tokens=n,
            prompt_tokens=usage.prompt_tokens if usage.prompt_tokens is not None else n_prompt,
            ttft_s=(times[0] - t_call) if times else float("nan"),
            prefill_s=(times[0] - t_start) if times else float("nan"),
            decode_tokens_per_s=decode, total_s=t_end - t_call, peak_memory_bytes=peak.bytes,
            peak_memory_kind=peak.kind, finish_reason=reason, model=self.card.name, scheme=self.scheme.name,
            token_ids=tuple(text.ids))

    def unload(self) -> None:
        """Drop the weights and give the memory back (CUDA cache emptied too)."""
        if self.engine.uses_torch_thread:
            torch_thread.run(self._unload)
        else:
            self._unload()

    def _unload(self) -> None:
        self._unloaded = True
        self.engine.unload()
        release_freed_memory()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __repr__(self) -> str:
        weights = "remote" if self.weights_memory_bytes is None else f"{self.weights_memory_bytes / 1e6:.1f} MB"
        return (f"LoadedModel({self.card.name}, scheme={self.scheme.name}, device={self.device}, "
                f"engine={self.engine.name}, weights={weights}, load={self.load_s:.1f} s)")


def sampling_from(max_new_tokens=128, temperature=0.0, top_p=1.0, top_k=0, min_new_tokens=0, seed=None) -> Sampling:
    """Sampling settings, each checked (InvalidSetting names the argument, the value and the range)."""
    n = validate.integer("max_new_tokens", max_new_tokens, lo=1)
    t = validate.number("temperature", temperature, lo=0.0)
    p = validate.number("top_p", top_p, hi=1.0)
    if p <= 0:
        raise InvalidSetting(f"top_p={top_p} is out of range.", "Pass a number above 0 and at most 1 (1 = off).")
    k = validate.integer("top_k", top_k, lo=0)
    floor = validate.integer("min_new_tokens", min_new_tokens, lo=0, hi=n)
    if seed is not None:
        seed = validate.integer("seed", seed, lo=0, hi=2**32 - 1)
    return Sampling(n, t, p, k, floor, seed)


def check_prompt(prompt, system, chat) -> None:
    """A non-empty string, or chat messages: a non-empty list of {"role", "content"} dicts."""
    if system is not None:
        validate.text("system", system, empty=True)
    if chat is not None:
        validate.flag("chat", chat)
    if isinstance(prompt, str):
        validate.text("prompt", prompt)
        return
    if not isinstance(prompt, (list, tuple)) or not prompt:
        raise InvalidSetting(f"prompt={_short(prompt)} is neither text nor a list of chat messages.",
                             'Pass a string, or [{"role": "user", "content": "..."}].')
    for i, m in enumerate(prompt):
        if not isinstance(m, dict) or set(m) - {"role", "content"} or "role" not in m or "content" not in m:
            raise InvalidSetting(f"prompt[{i}]={_short(m)} is not a chat message.",
                                 'Each message is a dict {"role": ..., "content": ...} and nothing else.')
        validate.choice(f"prompt[{i}]['role']", m["role"], ROLES)
        validate.text(f"prompt[{i}]['content']", m["content"], empty=True)


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _are_token_ids(ids) -> bool:
    return isinstance(ids, (list, tuple)) and all(isinstance(i, int) for i in ids)


def _in_thread(job) -> Future:
    """Run `job` in a fresh daemon thread (engines with their own threads, e.g. llama.cpp, when streaming)."""
    future: Future = Future()

    def work():
        try:
            future.set_result(job())
        except BaseException as e:   # noqa: BLE001 - re-raised in the consumer's thread
            future.set_exception(e)
    threading.Thread(target=work, name="llamalab-stream", daemon=True).start()
    return future


def _drain(pieces: list[str]) -> Iterator[str]:
    yield from pieces
    pieces.clear()


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:   # noqa: BLE001 - the generation's own error is raised by whoever reads its result
        pass


def _done(job) -> Future:
    """Run `job` now and hand back its outcome as a finished Future."""
    future: Future = Future()
    try:
        future.set_result(job())
    except Exception as e:   # noqa: BLE001
        future.set_exception(e)
    return future


class _TextEmitter:
    """Turns token ids into text pieces as they come, never splitting a multi-byte character.
    Engines that stream text (a server) hand pieces directly; they pass through."""

    def __init__(self, decode, on_text):
        self.decode, self.on_text = decode, on_text
        self.ids: list[int] = []
        self.pieces: list[str] = []
        self.start = self.printed = 0

    def add(self, token) -> None:
        if isinstance(token, str):
            self.pieces.append(token)
            if self.on_text and token:
                self.on_text(token)
            return
        self.ids.append(token)
        if self.on_text:
            self._emit(final=False)

    def flush(self) -> None:
        if self.on_text and self.ids:
            self._emit(final=True)

    def text(self) -> str:
        return "".join(self.pieces) if self.pieces else self.decode(self.ids)

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
    """Peak during a block: torch.cuda.max_memory_allocated on GPU, sampled process RSS on CPU,
    nothing for a remote engine (its memory is on another machine)."""

    def __init__(self, device: str, remote: bool = False):
        self.device, self.remote = device, remote
        self.bytes: int | None = None if remote else 0
        self.cuda = device.startswith("cuda") and not remote
        self.kind = (REMOTE_MEMORY_KIND if remote else "torch.cuda.max_memory_allocated" if self.cuda
                     else "process RSS (peak of 20 Hz samples)")
        self.monitor = None if (self.cuda or remote) else Monitor(interval=0.05)

    def __enter__(self):
        if self.cuda:
            import torch
            torch.cuda.reset_peak_memory_stats()
        elif self.monitor:
            self.monitor.start()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            import torch
            self.bytes = torch.cuda.max_memory_allocated()
        elif self.monitor:
            self.monitor.stop()
            self.bytes = self.monitor.peak_rss_bytes
