"""A loaded model and its measured generations: text, time to first token,
decode speed, peak memory."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field

from ..catalog import ModelCard, Scheme
from ..core import memory, torch_thread
from ..core.errors import InvalidSetting, LlamalabError, PromptTooLong
from ..core.settings import with_changes
from ..core.tasks import AnyOf
from ..engines.base import Concurrent, Engine, Sampling, Usage, check_prompt
from ..plan.estimator import Estimate


@dataclass(frozen=True)
class Generation:
    """One measured generation. Times in seconds; `peak_memory_kind` says what the peak counts."""

    text: str
    new_tokens: int  # new tokens generated (an end-of-sequence token included)
    prompt_tokens: (
        int | None
    )  # None only for a remote engine that neither tokenizes nor reports usage
    ttft_s: float  # call → first new token (chat template + tokenization + prefill)
    prefill_s: float  # engine start → first new token (the prompt's forward pass + sampling)
    decode_tokens_per_s: float  # (new_tokens − 1) / (last token time − first token time)
    total_s: float
    peak_memory_bytes: int | None  # None for a remote engine (memory.REMOTE)
    peak_memory_kind: str
    finish_reason: (
        str  # "stop" (end of sequence), "length" (max_new_tokens) or "stopped" (user, deadline)
    )
    model: str = ""
    scheme: str = ""
    token_ids: tuple[int, ...] = field(default=(), repr=False)
    token_times: tuple[float, ...] = field(
        default=(), repr=False
    )  # each token's arrival, s after the call
    # The peak by kind, from the same samples (CPU only; None on a GPU or remote): what the process
    # allocated, its mapped files (llama.cpp's GGUF, a bf16 checkpoint's weights), and what its
    # container counts (None outside a memory cgroup). memory.ANON, memory.FILE, memory.CONTAINER.
    peak_anon_bytes: int | None = None
    peak_file_bytes: int | None = None
    peak_container_bytes: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("token_ids"), d.pop("token_times")
        return d


@dataclass
class LoadedModel:
    """A model in memory (or on a server) with the facts of its loading. `generate` and `stream`
    measure every call. `card`, `scheme` and `estimate` are None for a served model the catalog does
    not know."""

    engine: Engine
    card: ModelCard | None
    scheme: Scheme | None
    device: str  # "cpu", "cuda", "cuda:N", or "remote"
    load_s: float
    weights_memory_bytes: (
        int | None
    )  # measured bytes of weights and buffers in memory (None: remote)
    load_memory_delta_bytes: int | None  # RSS (CPU) or CUDA-allocated (GPU) growth during the load
    load_memory_kind: str
    estimate: Estimate | None
    load_peak_bytes: int | None = (
        0  # peak growth of the same measure while loading (quantize-on-load copies)
    )
    path: str = ""  # the weights' folder or file, or a server's URL
    backend: str = ""
    adapter: str = ""  # the peft adapter folder attached at load ('' when none)
    served_name: str = ""  # the id a server serves the model under (remote models)
    # The load by kind (CPU only; None on a GPU or remote): anonymous and file-backed RSS growth it
    # left (a checkpoint left mapped shows in the second), the anonymous peak growth, and what the
    # container counts after it (all its processes, and the file pages they read).
    load_anon_bytes: int | None = None
    load_file_bytes: int | None = None
    load_anon_peak_bytes: int | None = None
    load_container_bytes: int | None = None
    _calls: set = field(
        default_factory=set, init=False, repr=False
    )  # stop events of calls in progress
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _owner: int | None = field(default=None, init=False, repr=False)
    _unloaded: bool = field(default=False, init=False, repr=False)

    @property
    def name(self) -> str:
        """The model's name: its catalog card's, else the id its server serves it under."""
        return self.card.name if self.card else self.served_name

    @property
    def scheme_name(self) -> str:
        """The scheme's name; "served" when a server keeps its format to itself."""
        return self.scheme.name if self.scheme else "served"

    @property
    def is_loaded(self) -> bool:
        """False once `unload()` ran."""
        return not self._unloaded

    @property
    def estimate_error_pct(self) -> float | None:
        """Estimated weight bytes vs measured weights in memory,
        in percent of the measured value."""
        if not self.weights_memory_bytes or self.estimate is None:
            return None
        return (
            100.0
            * (self.estimate.breakdown["weights"] - self.weights_memory_bytes)
            / self.weights_memory_bytes
        )

    def to_dict(self) -> dict:
        e = self.estimate
        return {
            "model": self.name,
            "scheme": self.scheme_name,
            "device": self.device,
            "backend": self.backend,
            "engine": self.engine.name,
            "load_s": self.load_s,
            "weights_memory_bytes": self.weights_memory_bytes,
            "estimated_weights_bytes": e.breakdown["weights"] if e else None,
            "estimate_error_pct": self.estimate_error_pct,
            "load_memory_delta_bytes": self.load_memory_delta_bytes,
            "load_memory_kind": self.load_memory_kind,
            "load_peak_bytes": self.load_peak_bytes,
            "estimated_load_peak_bytes": e.load_peak_bytes - e.breakdown["overhead"] if e else None,
            "load_anon_bytes": self.load_anon_bytes,
            "load_file_bytes": self.load_file_bytes,
            "load_anon_peak_bytes": self.load_anon_peak_bytes,
            "load_container_bytes": self.load_container_bytes,
            "path": self.path,
        }

    def stop(self) -> None:
        """End every generation in progress (from any thread) after its current token."""
        for event in list(self._calls):
            event.set()

    def generate(
        self,
        prompt,
        sampling: Sampling | None = None,
        *,
        system: str | None = None,
        chat: bool | None = None,
        stop_event: threading.Event | None = None,
        on_text: Callable[[str], None] | None = None,
        **sampling_fields,
    ) -> Generation:
        """Generate from a string or chat messages. `sampling` (a Sampling) and/or its fields as
        keywords (`max_new_tokens=64, temperature=0.7`) say how. `on_text` gets each new piece of
        text as it comes, on this thread (the torch thread only decodes tokens). `stop_event`
        (set from any thread) ends it after the current token. Ctrl-C while waiting stops it, then
        raises KeyboardInterrupt."""
        if on_text is not None and not callable(on_text):
            raise InvalidSetting(
                f"on_text={on_text!r} is not callable.", "Pass a function taking a str, or None."
            )
        kwargs = dict(system=system, chat=chat, stop_event=stop_event, **sampling_fields)
        if on_text is not None and self._on_torch_thread():
            for item in self.stream(prompt, sampling, **kwargs):
                if isinstance(item, Generation):
                    return item
                on_text(item)
        text = _TextEmitter(self.engine.decode, on_text) if on_text is not None else None
        job, stop = self._prepare(prompt, sampling, sink=text and text.add, **kwargs)
        if self._on_torch_thread():
            return torch_thread.wait(torch_thread.submit(job), on_interrupt=stop.set)
        generation = job()  # inline: an engine with its own threads, or already on the torch thread
        if text is not None:
            text.flush()
        return generation

    def stream(
        self, prompt, sampling: Sampling | None = None, **kwargs
    ) -> Iterator[str | Generation]:
        """Yield text pieces as they are generated, then the finished Generation. Tokens are turned
        into text here, on the consumer's thread. Closing the iterator early (or `stop()`) ends the
        generation."""
        tokens: queue.SimpleQueue = queue.SimpleQueue()
        job, stop = self._prepare(prompt, sampling, sink=tokens.put, **kwargs)
        end = object()
        if self._on_torch_thread():
            future = torch_thread.submit(job)
        else:  # inline on the torch thread, or an engine with its own threads
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
            if not future.done():  # closed early, or Ctrl-C: end the generation and wait for it
                stop.set()
                _quietly(torch_thread.wait, future)
        yield future.result()

    def _on_torch_thread(self) -> bool:
        """Submit to the torch thread? Engines say so (llama.cpp runs its own thread pool and does
        not); already on the torch thread (a callback that generates) the job runs inline
        instead."""
        return self.engine.uses_torch_thread and not torch_thread.is_torch_thread()

    def _prepare(
        self, prompt, sampling=None, system=None, chat=None, stop_event=None, sink=None, **fields
    ):
        """Check the arguments, encode the prompt here (the caller's thread),
        and return the job to run."""
        if sampling is not None and not isinstance(sampling, Sampling):
            raise InvalidSetting(
                f"sampling must be a Sampling, not {type(sampling).__name__}.",
                "Pass sampling=llamalab.Sampling(...) or its fields as keywords.",
            )
        sampling = with_changes(sampling or Sampling(), **fields)
        check_prompt(prompt, system, chat)
        if stop_event is not None and not isinstance(stop_event, threading.Event):
            raise InvalidSetting(
                f"stop_event={stop_event!r} is not a threading.Event.", "Pass threading.Event()."
            )
        if not self.is_loaded:
            raise LlamalabError("This model was unloaded.", "Load it again with llamalab.load().")
        t_call = time.perf_counter()
        ids = self.engine.encode(prompt, system=system, chat=chat)
        n = len(ids) if _are_token_ids(ids) else None
        if n is not None and n + sampling.max_new_tokens > self.engine.context_length:
            raise PromptTooLong(n, sampling.max_new_tokens, self.engine.context_length)
        stop = AnyOf(*([stop_event] if stop_event is not None else []))
        return (lambda: self._call(ids, n, sampling, stop, sink, t_call)), stop

    def _call(self, ids, n_prompt, sampling, stop, sink, t_call) -> Generation:
        """One call: registered so `stop()` reaches it; serialized unless the engine takes
        concurrent calls."""
        self._calls.add(stop)
        try:
            if isinstance(self.engine, Concurrent):
                return self._run(ids, n_prompt, sampling, stop, sink, t_call)
            if self._owner == threading.get_ident():
                raise LlamalabError(
                    "generate() was called from inside this model's own generation (a callback).",
                    "Collect the text in the callback and generate again after the call returns.",
                )
            with self._lock:  # one generation at a time per local model
                self._owner = threading.get_ident()
                try:
                    return self._run(ids, n_prompt, sampling, stop, sink, t_call)
                finally:
                    self._owner = None
        finally:
            self._calls.discard(stop)

    def _run(self, ids, n_prompt, sampling, stop, sink, t_call) -> Generation:
        """The generation itself; `sink` gets each raw token (an id,
        or a text piece from a server)."""
        text = _TextEmitter(self.engine.decode, None)
        times: list[float] = []

        def on_token(token) -> None:
            times.append(time.perf_counter())
            memory.count_tokens(1)
            text.add(token)
            if sink is not None:
                sink(token)

        peak = memory.Peak(self.device, self.engine.remote)
        t_start = time.perf_counter()
        with peak:
            usage = self.engine.generate(ids, sampling, on_token, stop.is_set) or Usage()
        t_end = time.perf_counter()
        n = usage.new_tokens if usage.new_tokens is not None else len(times)
        decode = (
            (len(times) - 1) / (times[-1] - times[0])
            if len(times) > 1 and times[-1] > times[0]
            else 0.0
        )
        reason = (
            "stopped"
            if stop.is_set() and n < sampling.max_new_tokens
            else ("length" if n >= sampling.max_new_tokens else "stop")
        )
        return Generation(
            text=text.text(),
            new_tokens=n,
            prompt_tokens=usage.prompt_tokens if usage.prompt_tokens is not None else n_prompt,
            ttft_s=(times[0] - t_call) if times else float("nan"),
            prefill_s=(times[0] - t_start) if times else float("nan"),
            decode_tokens_per_s=decode,
            total_s=t_end - t_call,
            peak_memory_bytes=peak.bytes,
            peak_memory_kind=peak.kind,
            peak_anon_bytes=peak.anon_bytes,
            peak_file_bytes=peak.file_bytes,
            peak_container_bytes=peak.container_bytes,
            finish_reason=reason,
            model=self.name,
            scheme=self.scheme_name,
            token_ids=tuple(text.ids),
            token_times=tuple(t - t_call for t in times),
        )

    def unload(self) -> None:
        """Drop the weights and give the memory back (CUDA cache emptied too)."""
        if self.engine.uses_torch_thread:
            torch_thread.run(self._unload)
        else:
            self._unload()

    def _unload(self) -> None:
        self._unloaded = True
        self.engine.unload()
        memory.release_freed_memory()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __repr__(self) -> str:
        weights = (
            "remote"
            if self.weights_memory_bytes is None
            else f"{self.weights_memory_bytes / 1e6:.1f} MB"
        )
        return (
            f"LoadedModel({self.name}, scheme={self.scheme_name}, device={self.device}, "
            f"engine={self.engine.name}, weights={weights}, load={self.load_s:.1f} s)"
        )


def _are_token_ids(ids) -> bool:
    return isinstance(ids, (list, tuple)) and all(isinstance(i, int) for i in ids)


def _in_thread(job) -> Future:
    """Run `job` in a fresh daemon thread (engines with their own threads, e.g.
    llama.cpp, when streaming)."""
    future: Future = Future()

    def work():
        try:
            future.set_result(job())
        except BaseException as e:
            future.set_exception(e)

    threading.Thread(target=work, name="llamalab-stream", daemon=True).start()
    return future


def _drain(pieces: list[str]) -> Iterator[str]:
    yield from pieces
    pieces.clear()


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass


def _done(job) -> Future:
    """Run `job` now and hand back its outcome as a finished Future."""
    future: Future = Future()
    try:
        future.set_result(job())
    except Exception as e:
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
        window = self.decode(self.ids[self.start :])
        if window.endswith("\ufffd") and not final:
            return
        piece, self.printed = window[self.printed :], len(window)
        if window.endswith("\n"):  # restart the window on a line break: decoding stays O(line)
            self.start, self.printed = len(self.ids), 0
        if piece:
            self.on_text(piece)
