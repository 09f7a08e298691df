"""A loaded model and its measured generations: text, time to first token,
decode speed, peak memory."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace

from ..catalog import ModelCard, Scheme
from ..core import memory, torch_thread
from ..core.errors import InvalidSetting, LlamalabError, PromptTooLong
from ..core.settings import with_changes
from ..core.tasks import AnyOf
from ..engines.base import Adapters, Concurrent, Engine, Sampling, Usage, check_prompt, require
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

    @property
    def prefill_tokens_per_s(self) -> float | None:
        """Prompt tokens ÷ `prefill_s` (None where the prompt's size or its first token is
        unknown)."""
        return _prefill_rate(self.prompt_tokens, self.prefill_s)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("token_ids"), d.pop("token_times")
        d["prefill_tokens_per_s"] = self.prefill_tokens_per_s
        return d


class LiveStats:
    """A generation's figures while it streams, readable from any thread: pass one as `live=` to
    `generate()` or `stream()` (one call at a time; each call starts it afresh). They come from the
    same clock, token times and memory probe as the Generation the call returns, and are that
    Generation's figures once it is `done` (`generation` holds it).

        live = llamalab.LiveStats()
        m.generate("Hi", on_text=lambda _: print(live.decode_tokens_per_s), live=live)
    """

    def __init__(self):
        self.generation: Generation | None = None
        self._times: list[float] = []  # each token's arrival (time.perf_counter)
        self._t_call = self._t_start = 0.0
        self._prompt_tokens: int | None = None
        self._peak: memory.Peak | None = None

    def _begin(self, times: list[float], t_call: float, t_start: float, prompt_tokens, peak):
        self.generation = None
        self._times, self._t_call, self._t_start = times, t_call, t_start
        self._prompt_tokens, self._peak = prompt_tokens, peak

    @property
    def done(self) -> bool:
        """The generation ended and `generation` holds its final figures."""
        return self.generation is not None

    @property
    def started(self) -> bool:
        """A generation has begun (it may have no token yet)."""
        return self._peak is not None

    @property
    def prompt_tokens(self) -> int | None:
        """The prompt's tokens (a server without a tokenizer here reports them at the end)."""
        return self.generation.prompt_tokens if self.generation else self._prompt_tokens

    @property
    def new_tokens(self) -> int:
        return self.generation.new_tokens if self.generation else len(self._times)

    @property
    def elapsed_s(self) -> float:
        """The call until now (its `total_s` once done)."""
        if self.generation:
            return self.generation.total_s
        return time.perf_counter() - self._t_call if self.started else 0.0

    @property
    def ttft_s(self) -> float | None:
        """Time to first token (None until it came)."""
        if self.generation:
            return self.generation.ttft_s
        return self._times[0] - self._t_call if self._times else None

    @property
    def prefill_s(self) -> float | None:
        if self.generation:
            return self.generation.prefill_s
        return self._times[0] - self._t_start if self._times else None

    @property
    def prefill_tokens_per_s(self) -> float | None:
        if self.generation:
            return self.generation.prefill_tokens_per_s
        return _prefill_rate(self._prompt_tokens, self.prefill_s)

    @property
    def decode_tokens_per_s(self) -> float:
        """New tokens after the first ÷ the time between the first and the latest (0 before the
        second token)."""
        if self.generation:
            return self.generation.decode_tokens_per_s
        return _decode_rate(self._times)

    @property
    def peak_memory_bytes(self) -> int | None:
        """The peak so far (None for a remote engine, and before the probe's first sample)."""
        if self.generation:
            return self.generation.peak_memory_bytes
        return self._peak.so_far if self._peak is not None else None

    @property
    def peak_memory_kind(self) -> str:
        if self.generation:
            return self.generation.peak_memory_kind
        return self._peak.kind if self._peak is not None else ""


def _decode_rate(times: list[float]) -> float:
    """(tokens − 1) ÷ (last token time − first token time); 0 with fewer than two tokens."""
    n = len(times)
    if n < 2:
        return 0.0
    span = times[n - 1] - times[0]  # n, not -1: another thread may append meanwhile
    return (n - 1) / span if span > 0 else 0.0


def _prefill_rate(prompt_tokens: int | None, prefill_s: float | None) -> float | None:
    if not prompt_tokens or prefill_s is None or not prefill_s > 0:  # NaN: no token came
        return None
    return prompt_tokens / prefill_s


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
        live: LiveStats | None = None,
        **sampling_fields,
    ) -> Generation:
        """Generate from a string or chat messages. `sampling` (a Sampling) and/or its fields as
        keywords (`max_new_tokens=64, temperature=0.7`) say how. `on_text` gets each new piece of
        text as it comes, on this thread (the torch thread only decodes tokens). `stop_event`
        (set from any thread) ends it after the current token. `live` (a LiveStats) shows its
        figures while it runs. Ctrl-C while waiting stops it, then raises KeyboardInterrupt."""
        if on_text is not None and not callable(on_text):
            raise InvalidSetting(
                f"on_text={on_text!r} is not callable.", "Pass a function taking a str, or None."
            )
        kwargs = dict(system=system, chat=chat, stop_event=stop_event, live=live, **sampling_fields)
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

    def request_preview(
        self, prompt, sampling: Sampling | None = None, *, system: str | None = None, **fields
    ):
        """A served model's chat request for `prompt` (URL, headers with the key redacted, JSON
        body), built as `generate()` builds it but not sent. An in-process model sends none."""
        preview = getattr(self.engine, "request_preview", None)
        if preview is None:
            raise InvalidSetting(
                f"{self.name} runs in this process: it sends no HTTP request to show.",
                "Show a served model's request: llamalab.connect(url, model).request_preview(...)"
                " or llamalab.request_preview(url, model, prompt).",
            )
        check_prompt(prompt, system, None)
        return preview(prompt, with_changes(sampling or Sampling(), **fields), system)

    def stream(
        self, prompt, sampling: Sampling | None = None, **kwargs
    ) -> Iterator[str | Generation]:
        """Yield text pieces as they are generated, then the finished Generation. Tokens are turned
        into text here, on the consumer's thread. Closing the iterator early (or `stop()`) ends the
        generation. Takes generate()'s keywords (`live=` too), except on_text."""
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
        self,
        prompt,
        sampling=None,
        system=None,
        chat=None,
        stop_event=None,
        sink=None,
        live=None,
        **fields,
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
        if live is not None and not isinstance(live, LiveStats):
            raise InvalidSetting(
                f"live={live!r} is not a LiveStats.", "Pass live=llamalab.LiveStats(), or None."
            )
        if not self.is_loaded:
            raise LlamalabError("This model was unloaded.", "Load it again with llamalab.load().")
        t_call = time.perf_counter()
        ids = self.engine.encode(prompt, system=system, chat=chat)
        n = len(ids) if _are_token_ids(ids) else None
        if n is not None and n + sampling.max_new_tokens > self.engine.context_length:
            raise PromptTooLong(n, sampling.max_new_tokens, self.engine.context_length)
        stop = AnyOf(*([stop_event] if stop_event is not None else []))
        return (lambda: self._call(ids, n, sampling, stop, sink, t_call, live)), stop

    def _call(self, ids, n_prompt, sampling, stop, sink, t_call, live=None) -> Generation:
        """One call: registered so `stop()` reaches it; serialized unless the engine takes
        concurrent calls."""
        self._calls.add(stop)
        try:
            if isinstance(self.engine, Concurrent):
                return self._run(ids, n_prompt, sampling, stop, sink, t_call, live)
            if self._owner == threading.get_ident():
                raise LlamalabError(
                    "generate() was called from inside this model's own generation (a callback).",
                    "Collect the text in the callback and generate again after the call returns.",
                )
            with self._lock:  # one generation at a time per local model
                self._owner = threading.get_ident()
                try:
                    return self._run(ids, n_prompt, sampling, stop, sink, t_call, live)
                finally:
                    self._owner = None
        finally:
            self._calls.discard(stop)

    def _run(self, ids, n_prompt, sampling, stop, sink, t_call, live=None) -> Generation:
        """The generation itself; `sink` gets each raw token (an id,
        or a text piece from a server); `live` reads the same token times and peak as it runs."""
        text = _TextEmitter(self.engine.decode, None)
        times: list[float] = []

        def on_token(token) -> None:
            times.append(time.perf_counter())
            memory.count_tokens(1)
            text.add(token)
            if sink is not None:
                sink(token)

        peak = memory.Peak(self.device, self.engine.remote, self.engine.server_pid)
        t_start = time.perf_counter()
        if live is not None:
            live._begin(times, t_call, t_start, n_prompt, peak)
        with peak:
            usage = self.engine.generate(ids, sampling, on_token, stop.is_set) or Usage()
        t_end = time.perf_counter()
        n = usage.new_tokens if usage.new_tokens is not None else len(times)
        decode = _decode_rate(times)
        reason = (
            "stopped"
            if stop.is_set() and n < sampling.max_new_tokens
            else ("length" if n >= sampling.max_new_tokens else "stop")
        )
        generation = Generation(
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
        if live is not None:
            live.generation = generation
        return generation

    def without_adapters(self) -> LoadedModel:
        """The same weights with every peft adapter switched off, as a model of its own: the base
        beside base + adapter at no memory cost (`inspect_tokens(m, prompt,
        against=m.without_adapters())`). Unloading it leaves this model loaded."""
        engine = require(
            self.engine,
            Adapters,
            "switch peft adapters off",
            "Load a transformers scheme (fp32/bf16/fp16, nf4, gptq): its engine takes peft "
            "adapters.",
        )
        return replace(self, engine=engine.adapters_off(), adapter="")

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
