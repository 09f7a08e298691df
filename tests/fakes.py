"""A fake engine for fast tests: scripted tokens, a per-token delay, no torch, no files.

`FakeEngine` goes through everything LoadedModel does for a real local engine (torch thread,
timing, streaming, stop, peak memory); `FakeRemoteEngine` streams text and reports usage like an
OpenAI-compatible server, and has no memory to measure. `FakeBackend` serves them as schemes
"fake", "fake-scoring" and "fake-remote" (register_backend in conftest; `EP_BACKEND` is what the
entry-point test installs as a plugin).
"""
from __future__ import annotations

import threading
import time

from llamalab.catalog import Scheme
from llamalab.runtime import Engine, Usage

EOS = 0
WORDS = ["Paris", " is", " the", " capital", " of", " France", ".", "\n", " é"]   # ids 1..9
SCRIPT = [1, 2, 3, 4, 5, 6, 7, 8, EOS]                                         # "Paris is the capital of France.\n"
ROLE_IDS = {"system": 10, "user": 11, "assistant": 12}
BOS, START_REPLY = 13, 14
VOCAB = 16


class FakeEngine(Engine):
    """Emits `script` (cycled until max_new_tokens; EOS ends it once min_new_tokens are out)."""
    name = "fake"

    def __init__(self, script=SCRIPT, delay: float = 0.0, context_length: int = 8192, chat: bool = True,
                 uses_torch_thread: bool = True):
        self.script, self.delay, self.context_length = list(script), delay, context_length
        self.chat, self.uses_torch_thread = chat, uses_torch_thread
        self.threads: list[str] = []        # the thread each generation ran on
        self.unloaded = False

    @property
    def is_chat(self) -> bool:
        return self.chat

    def encode(self, prompt, system=None, chat=None) -> list[int]:
        from llamalab.runtime.engine import to_messages
        if chat if chat is not None else self.chat:
            ids = [BOS]
            for m in to_messages(prompt, system):
                ids += [ROLE_IDS[m["role"]], *self._words(m["content"])]
            return ids + [START_REPLY]
        text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        return self._words(text)

    @staticmethod
    def _words(text: str) -> list[int]:
        return [len(w) % 9 + 1 for w in text.split()]

    def decode(self, ids) -> str:
        return "".join(WORDS[i - 1] for i in ids if 1 <= i <= len(WORDS))

    def generate(self, prompt_ids, sampling, on_token, should_stop) -> None:
        self.threads.append(threading.current_thread().name)
        n = 0
        while n < sampling.max_new_tokens:
            token = self.script[n % len(self.script)]
            if token == EOS and n < sampling.min_new_tokens:
                token = self.script[0]
            if self.delay:
                time.sleep(self.delay)
            on_token(token)
            n += 1
            if token == EOS or should_stop():
                return

    def weights_bytes(self) -> int:
        return 1_000_000

    def unload(self) -> None:
        self.unloaded = True


class FakeScoringEngine(FakeEngine):
    """A fake engine with logits: the next token is always predicted as `(id + 1) % VOCAB`."""

    def logits(self, ids):
        import numpy as np
        out = np.zeros((len(ids), VOCAB), dtype=np.float32)
        out[np.arange(len(ids)), (np.asarray(ids) + 1) % VOCAB] = 5.0
        return out


class FakeRemoteEngine(Engine):
    """Like a server: takes the messages (no tokenizer here), streams text, reports usage; no local memory."""
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
        from llamalab.runtime.engine import to_messages
        return to_messages(prompt, system)

    def decode(self, ids) -> str:
        return ""

    def generate(self, messages, sampling, on_token, should_stop) -> Usage:
        n = 0
        for piece in self.pieces[:sampling.max_new_tokens]:
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
        self.SCHEMES = [Scheme(name=f"{name}", family="float", bits=16, rank=90, help="test engine",
                               devices={"cpu": {"backend": name}, "cuda": {"backend": ""}}),
                        Scheme(name=f"{name}-scoring", family="float", bits=16, rank=91, help="test engine with logits",
                               devices={"cpu": {"backend": name}}),
                        Scheme(name=f"{name}-remote", family="float", bits=16, rank=92, help="remote test engine",
                               devices={"cpu": {"backend": name}})]

    def available(self, device: str) -> tuple[bool, str]:
        return (True, "") if device == "cpu" else (False, "the fake engine runs on the CPU only")

    def load(self, path, scheme, device, trust_remote_code=False, **options):
        if scheme.name.endswith("-remote"):
            return FakeRemoteEngine(**options)
        if scheme.name.endswith("-scoring"):
            return FakeScoringEngine(**options)
        return FakeEngine(**options)


EP_BACKEND = FakeBackend("fake-ep")
