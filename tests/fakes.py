"""The one fake-engine family for fast tests: scripted tokens, a per-token delay, no torch,
no files.

`FakeEngine` goes through everything LoadedModel does for a real local engine (torch thread, timing,
streaming, stop, peak memory); `FakeScoringEngine` also declares `Scores` (a tokenizer and
per-position logits, so perplexity and KL run); `FakeRemoteEngine` streams text, reports usage and
takes concurrent requests like a server, with no memory to measure. `FakeBackend` serves them as
schemes "fake", "fake-scoring" and "fake-remote" (registered in conftest; `EP_BACKEND` is what the
entry-point test installs as a plugin). `Loader` hands a sweep one fresh fake per scheme, and checks
one model is loaded at a time.
"""

from __future__ import annotations

import threading
import time

import llamalab
from llamalab import Engine, LoadedModel, Scheme, SchemeUnavailable, Usage
from llamalab.engines.base import Concurrent, Scores, to_messages

EOS = 0
WORDS = ["Paris", " is", " the", " capital", " of", " France", ".", "\n", " é"]  # ids 1..9
SCRIPT = [1, 2, 3, 4, 5, 6, 7, 8, EOS]  # "Paris is the capital of France.\n"
ENDLESS = SCRIPT[:-1]  # the same words with no end of sequence: runs to max_new_tokens
ROLE_IDS = {"system": 10, "user": 11, "assistant": 12}
BOS, START_REPLY = 13, 14
VOCAB = 16


class FakeEngine(Engine):
    """Emits `script` (cycled until max_new_tokens; EOS ends it once min_new_tokens are out). `fail`
    raises in generate, as a broken engine would."""

    name = "fake"

    def __init__(
        self,
        script=SCRIPT,
        delay: float = 0.0,
        context_length: int = 8192,
        chat: bool = True,
        uses_torch_thread: bool = True,
        fail: bool = False,
        hook=None,
    ):
        self.script, self.delay, self.context_length = list(script), delay, context_length
        self.chat, self.uses_torch_thread, self.fail = chat, uses_torch_thread, fail
        self.hook = (
            hook  # hook(n) after the n-th token, on the engine's thread (a test stops from there)
        )
        self.threads: list[str] = []  # the thread each generation ran on
        self.counts: list[int] = []  # tokens each generation emitted
        self.unloaded = False

    @property
    def is_chat(self) -> bool:
        return self.chat

    def encode(self, prompt, system=None, chat=None) -> list[int]:
        if chat if chat is not None else self.chat:
            ids = [BOS]
            for m in to_messages(prompt, system):
                ids += [ROLE_IDS[m["role"]], *self._words(m["content"])]
            return [*ids, START_REPLY]
        text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        return self._words(text)

    @staticmethod
    def _words(text: str) -> list[int]:
        return [len(w) % 9 + 1 for w in text.split()]

    def decode(self, ids) -> str:
        return "".join(WORDS[i - 1] for i in ids if 1 <= i <= len(WORDS))

    def generate(self, prompt_ids, sampling, on_token, should_stop) -> None:
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("the engine broke")
        n = 0
        try:
            while n < sampling.max_new_tokens:
                token = self.script[n % len(self.script)]
                if token == EOS and n < sampling.min_new_tokens:
                    token = self.script[0]
                if self.delay:
                    time.sleep(self.delay)
                on_token(token)
                n += 1
                if self.hook:
                    self.hook(n)
                if token == EOS or should_stop():
                    return
        finally:
            self.counts.append(n)

    def weights_bytes(self) -> int:
        return 1_000_000

    def unload(self) -> None:
        self.unloaded = True


class FakeScoringEngine(FakeEngine, Scores):
    """A fake engine that scores: text is tokenized one character per token, and position p predicts
    `(id + 1 + shift·(p mod 2)) mod VOCAB` (shift 0:
    the text's own next character when it counts up)."""

    def __init__(self, shift: int = 0, **options):
        super().__init__(**options)
        self.shift = shift

    def tokenize(self, text: str) -> list[int]:
        return [ord(c) % VOCAB for c in text]

    def logits(self, ids):
        import numpy as np

        out = np.zeros((len(ids), VOCAB), dtype=np.float32)
        for p, t in enumerate(ids):
            out[p, (t + 1 + self.shift * (p % 2)) % VOCAB] = 5.0
        return out


class FakeRemoteEngine(Engine, Concurrent):
    """Like a server: takes the messages (no tokenizer here), streams text, reports usage;
    no local memory."""

    name = "fake-remote"
    remote = True
    streams_text = True
    context_length = 4096

    def __init__(self, pieces=("Paris", " is", " the", " capital", "."), delay: float = 0.0):
        self.pieces, self.delay = list(pieces), delay

    @property
    def is_chat(self) -> bool:
        return True

    def encode(self, prompt, system=None, chat=None):
        return to_messages(prompt, system)

    def decode(self, ids) -> str:
        return ""

    def generate(self, messages, sampling, on_token, should_stop) -> Usage:
        n = 0
        for piece in self.pieces[: sampling.max_new_tokens]:
            if self.delay:
                time.sleep(self.delay)
            on_token(piece)
            n += 1
            if should_stop():
                break
        prompt_tokens = sum(len(m["content"].split()) + 3 for m in messages)
        return Usage(prompt_tokens=prompt_tokens, new_tokens=n)


class FakeBackend:
    """A backend (module-like object) serving the fake engines."""

    REQUIRES: dict = {}
    NEEDS_FILES = False

    def __init__(self, name: str = "fake"):
        self.name = name
        self.SCHEMES = [
            Scheme(
                name=name,
                family="float",
                bits=16,
                rank=90,
                help="test engine",
                devices={"cpu": {"backend": name}, "cuda": {"backend": ""}},
            ),
            Scheme(
                name=f"{name}-scoring",
                family="float",
                bits=16,
                rank=91,
                help="test engine with logits",
                devices={"cpu": {"backend": name}},
            ),
            Scheme(
                name=f"{name}-remote",
                family="float",
                bits=16,
                rank=92,
                help="remote test engine",
                devices={"cpu": {"backend": name}},
            ),
        ]

    def available(self, device: str) -> tuple[bool, str]:
        return (True, "") if device == "cpu" else (False, "the fake engine runs on the CPU only")

    def load(self, path, scheme, device, trust_remote_code=False, **options):
        options.pop("context", None)
        if scheme.name.endswith("-remote"):
            return FakeRemoteEngine(**options)
        if scheme.name.endswith("-scoring"):
            return FakeScoringEngine(**options)
        return FakeEngine(**options)


EP_BACKEND = FakeBackend("fake-ep")


class Loader:
    """`load(model, scheme, device=)` for a sweep: the engine given for the scheme (default: a fresh
    FakeEngine), a SchemeUnavailable for schemes in `fail`;
    checks each one was unloaded before the next."""

    def __init__(self, engines=None, fail=()):
        self.engines, self.fail, self.loaded = engines or {}, set(fail), []

    def __call__(self, model, scheme, device="auto"):
        assert all(m.engine.unloaded for m in self.loaded), (
            "a scheme loaded before the previous one was unloaded"
        )
        device = "cpu" if device == "auto" else device  # the fakes run on the CPU
        if scheme in self.fail:
            raise SchemeUnavailable(scheme, device, "not on this test machine", "bf16")
        engine = self.engines.get(scheme) or FakeEngine()
        m = LoadedModel(
            engine=engine,
            card=llamalab.card("default"),
            scheme=llamalab.scheme(scheme),
            device="cpu",
            load_s=0.01,
            weights_memory_bytes=engine.weights_bytes(),
            load_memory_delta_bytes=2_000_000,
            load_memory_kind="process RSS growth",
            estimate=llamalab.estimate("default", scheme),
            path="",
        )
        self.loaded.append(m)
        return m
