"""The Engine: the one thing that differs between runtimes (transformers, llama.cpp in-process, a
server over HTTP). `LoadedModel` wraps any engine with the same timing, streaming, stop and memory
logic, so nothing above the runtime asks which engine it holds: it asks what an engine *can do*,
through the capabilities an engine declares by inheriting them (`Scores`, `Adapters`, `Concurrent`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core import validate
from ..core.errors import InvalidSetting, LlamalabError
from ..core.settings import setting

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Sampling:
    """How a generation picks its tokens; `generate()` takes these as keywords or as `sampling=`."""

    max_new_tokens: int = setting(
        128, "New tokens to generate at most (an end-of-sequence token ends earlier)."
    )
    temperature: float = setting(
        0.0, "0: greedy, always the most likely token (deterministic); higher: more varied."
    )
    top_p: float = setting(
        1.0,
        "Sample only from the smallest set of tokens whose probabilities add up to top_p (1: off).",
    )
    top_k: int = setting(0, "Sample only from the top_k most likely tokens (0: off).")
    min_new_tokens: int = setting(
        0,
        "Ignore end-of-sequence until this many tokens are out (= max_new_tokens: "
        "always exactly that many, for comparable speeds).",
    )
    seed: int | None = setting(None, "Random seed for sampling (None: not reseeded).")

    def __post_init__(self):
        n = validate.integer("max_new_tokens", self.max_new_tokens, lo=1)
        validate.number("temperature", self.temperature, lo=0.0)
        if validate.number("top_p", self.top_p, hi=1.0) <= 0:
            raise InvalidSetting(
                f"top_p={self.top_p} is out of range.",
                "Pass a number above 0 and at most 1 (1 = off).",
            )
        validate.integer("top_k", self.top_k, lo=0)
        validate.integer("min_new_tokens", self.min_new_tokens, lo=0, hi=n)
        if self.seed is not None:
            validate.integer("seed", self.seed, lo=0, hi=2**32 - 1)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass(frozen=True)
class Usage:
    """Token counts an engine reports itself (a server's `usage`); None where it did not say."""

    prompt_tokens: int | None = None
    new_tokens: int | None = None


class Engine:
    """What every engine provides. Subclass it; the class attributes are the defaults.

    - `encode` turns a prompt (string or chat messages) into what `generate` takes: token ids for an
      engine with a tokenizer; an engine without one (a server) returns the messages and reports the
      counts in the `Usage` its `generate` returns.
    - `generate` calls `on_token(token)` once per new token — an int id, or a str piece for an
      engine that streams text (`streams_text`) — checks `should_stop()` between tokens, returns
      Usage or None.
    - `weights_bytes()`: bytes of weights in this process's memory (None for a remote engine).
    """

    name: str = "engine"  # "transformers", "llama.cpp", ... (the `engine` column of every record)
    context_length: int = 0
    remote: bool = False  # runs elsewhere: LoadedModel measures no local memory for it
    server_pid: int | None = None  # remote, served by a process here (serve()): its RSS is read
    streams_text: bool = False  # on_token gets text pieces instead of token ids
    uses_torch_thread: bool = False  # its torch work must run on the runtime's one torch thread

    @property
    def is_chat(self) -> bool:
        return False

    def encode(self, prompt, system: str | None = None, chat: bool | None = None):
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def generate(
        self,
        prompt_ids,
        sampling: Sampling,
        on_token: Callable[[int | str], None],
        should_stop: Callable[[], bool],
    ) -> Usage | None:
        raise NotImplementedError

    def weights_bytes(self) -> int | None:
        return None

    def unload(self) -> None:
        pass


# --------------------------------------------------------------- capabilities an engine may declare


class Scores:
    """The engine gives next-token logits at every position (perplexity, KL,
    merge and export checks)."""

    def tokenize(self, text: str) -> list[int]:
        """Plain text → token ids, no chat template and no special tokens (the windows scored)."""
        raise NotImplementedError

    def logits(self, ids: list[int]):
        """float32 numpy [len(ids), vocab] of next-token logits."""
        raise NotImplementedError

    def piece(self, token_id: int) -> str:
        """One token's text, a special token shown as itself (the token inspector's labels)."""
        return self.decode([token_id])  # type: ignore[attr-defined]


class Adapters:
    """The engine holds a torch model that peft adapters attach to, train in and fold into."""

    model = None  # the transformers model (adapters are injected into its layers in place)
    tokenizer = None  # its Hugging Face tokenizer (chat template included)
    adapters_switched_off = False  # True on the handle adapters_off() returns

    def attach_adapter(self, folder: str, name: str = "default") -> None:
        """Load a saved peft adapter onto the model under `name` (the first one becomes active)."""
        raise NotImplementedError

    def adapter_names(self) -> tuple[list[str], str | None]:
        """(every adapter's name, the active one)."""
        raise NotImplementedError

    def adapters_off(self) -> Engine:
        """A second engine on the same weights whose forward passes run with every adapter
        switched off: the base beside base + adapter without a second copy."""
        raise NotImplementedError

    def use_adapter(self, name: str) -> None:
        raise NotImplementedError

    def remove_adapters(self) -> None:
        """Drop every adapter layer: the model is the plain base again
        (merged weights stay merged)."""
        raise NotImplementedError


@dataclass(frozen=True)
class TokenLogprob:
    """One token of an answer as a server scored it: its id (None where the server gives none),
    text, log-probability and the server's top alternatives [(id, text, logprob), ...], best
    first."""

    id: int | None
    text: str
    logprob: float
    top: tuple[tuple[int | None, str, float], ...]


class TokenLogprobs:
    """The engine reports, for each token of an answer it generates, its log-probability and the
    top alternatives (an OpenAI-compatible server's `logprobs` / `top_logprobs`)."""

    def answer_logprobs(
        self, prompt, sampling: Sampling, alternatives: int
    ) -> tuple[list[TokenLogprob], str]:
        """(each new token with its `alternatives` most likely tokens, the finish reason) for one
        answer to `prompt` (what `encode` returns)."""
        raise NotImplementedError


class Concurrent:
    """The engine takes several requests at once (a server batches them): `LoadedModel` does not
    serialize its calls, and a load test may send them in parallel."""


def require(engine: Engine, capability: type, what: str, fix: str = ""):
    """`engine` if it declares `capability`, else a LlamalabError saying it cannot `what`."""
    if isinstance(engine, capability):
        return engine
    raise LlamalabError(
        f"The {engine.name} engine cannot {what}.",
        fix or "Load the model with a transformers or llama.cpp backend (llamalab.load).",
    )


# ---------------------------------------------------------------- prompts


def to_messages(prompt, system: str | None) -> list[dict]:
    """A string becomes one user turn; a list of {"role", "content"} dicts is used as is."""
    messages = (
        [{"role": "user", "content": prompt}]
        if isinstance(prompt, str)
        else [dict(m) for m in prompt]
    )
    if system and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": system})
    return messages


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
        raise InvalidSetting(
            f"prompt={_short(prompt)} is neither text nor a list of chat messages.",
            'Pass a string, or [{"role": "user", "content": "..."}].',
        )
    for i, m in enumerate(prompt):
        if (
            not isinstance(m, dict)
            or set(m) - {"role", "content"}
            or "role" not in m
            or "content" not in m
        ):
            raise InvalidSetting(
                f"prompt[{i}]={_short(m)} is not a chat message.",
                'Each message is a dict {"role": ..., "content": ...} and nothing else.',
            )
        validate.choice(f"prompt[{i}]['role']", m["role"], ROLES)
        validate.text(f"prompt[{i}]['content']", m["content"], empty=True)


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


class HFTokenized:
    """Prompts through a Hugging Face tokenizer (`self.tokenizer`): its chat template, decoding and
    plain tokenizing. The transformers and llama.cpp engines share it: both see the same prompts."""

    tokenizer = None

    @property
    def is_chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode(self, prompt, system=None, chat=None) -> list[int]:
        return hf_encode(self.tokenizer, prompt, system, chat)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def tokenize(self, text: str) -> list[int]:
        return hf_tokenize(self.tokenizer, text)

    def piece(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=False)


def hf_encode(tokenizer, prompt, system: str | None = None, chat: bool | None = None) -> list[int]:
    """Token ids through a Hugging Face tokenizer: its chat template for chat, plain text otherwise
    (transformers and llama.cpp engines share it, so both see identical prompts)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat if chat is not None else has_template:
        if not has_template:
            raise InvalidSetting(
                "This model has no chat template.", "Pass a plain string with chat=False."
            )
        enc = tokenizer.apply_chat_template(
            to_messages(prompt, system), add_generation_prompt=True, return_dict=True
        )
        return list(enc["input_ids"])
    text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    return list(tokenizer(text)["input_ids"])


def hf_tokenize(tokenizer, text: str) -> list[int]:
    """Plain text → ids through a Hugging Face tokenizer, without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
