"""The token inspector: one answer, token by token — each token's probability, the most likely
alternatives and the entropy at that step; given a second model, the same answer through both, the
per-token KL and the first token where their greedy choices part.

A local model (an engine that declares `Scores`: transformers, llama.cpp) scores the answer by
teacher forcing: the prompt's ids (chat template included) and the answer's ids in one forward pass,
so every step's whole next-token distribution is known. A served model (`TokenLogprobs`) reports
only its own answer: each token's log-probability and its top alternatives, so its entropy is over
those alternatives only (a lower bound) and a given answer cannot be forced through it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..core import torch_thread, validate
from ..core.errors import InvalidSetting, LlamalabError, PromptTooLong
from ..engines.base import Adapters, Sampling, Scores, TokenLogprob, TokenLogprobs, check_prompt
from ..runtime.loaded import LoadedModel

MAX_ALTERNATIVES = 20  # OpenAI's cap on top_logprobs


class TokenizersDiffer(InvalidSetting):
    """Two models cut the same text into different tokens, so their steps cannot be paired."""


@dataclass(frozen=True)
class Alternative:
    """One candidate token at a step and its probability."""

    token: str
    prob: float
    token_id: int | None = None


@dataclass(frozen=True)
class TokenStep:
    """One answer token: its probability, the step's entropy (nats) and the top alternatives; and,
    against a second model, that model's probability of the same token, its top-1 and the KL."""

    position: int
    token: str
    token_id: int | None
    prob: float
    entropy: float
    top: tuple[Alternative, ...]  # best first
    other_prob: float | None = None
    other_top: Alternative | None = None
    kl: float | None = None  # KL(model ‖ other), nats; None unless both are local

    @property
    def parts(self) -> bool:
        """The two models' most likely tokens differ here (False without a second model)."""
        return self.other_top is not None and not _same(self.top[0], self.other_top)

    def to_dict(self) -> dict:
        return {
            "position": self.position,
            "token": self.token,
            "token_prob": self.prob,
            "token_entropy": self.entropy,
            "alternatives": ", ".join(f"{a.token!r} {a.prob:.3f}" for a in self.top),
            "other_prob": self.other_prob,
            "other_top1": self.other_top.token if self.other_top else None,
            "token_kl": self.kl,
            "parts": self.parts,
        }


@dataclass(frozen=True)
class TokenView:
    """An answer token by token (`steps`), what it was scored with and how, and against whom."""

    steps: tuple[TokenStep, ...]
    answer: str
    model: str
    scheme: str
    method: str  # how the probabilities were obtained, in words
    answer_from: str  # whose answer it is: "given", or "<model> <scheme> (greedy)"
    entropy_complete: bool  # False: entropy over the listed alternatives only (a lower bound)
    other: str = ""  # the second model and scheme ("" without one)
    other_method: str = ""

    @property
    def first_parting(self) -> int | None:
        """The first position where the two models' greedy choices differ (None: they never do,
        or there is no second model)."""
        return next((s.position for s in self.steps if s.parts), None)

    @property
    def kl_mean(self) -> float | None:
        """Mean per-token KL(model ‖ other), nats (None unless both models are local)."""
        kls = [s.kl for s in self.steps if s.kl is not None]
        return sum(kls) / len(kls) if kls and len(kls) == len(self.steps) else None

    @property
    def label(self) -> str:
        head = f"{self.model} {self.scheme}: {len(self.steps)} tokens of the {self.answer_from}"
        if not self.other:
            return f"{head} answer, {self.method}"
        part = self.first_parting
        kl = f", mean KL {self.kl_mean:.4f} nats/token" if self.kl_mean is not None else ""
        where = "never part" if part is None else f"first part at token {part}"
        return f"{head} answer vs {self.other}: greedy choices {where}{kl}"

    def __str__(self) -> str:
        return self.label

    def to_records(self) -> list[dict]:
        """One tidy row per token (keys from the metrics vocabulary), with model and scheme."""
        return [{"model": self.model, "scheme": self.scheme, **s.to_dict()} for s in self.steps]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(first_parting=self.first_parting, kl_mean=self.kl_mean)
        return d


def inspect_tokens(
    model,
    prompt,
    answer: str | None = None,
    *,
    against=None,
    max_new_tokens: int = 32,
    alternatives: int = 5,
    system: str | None = None,
    chat: bool | None = None,
    live=None,
    stop_event=None,
) -> TokenView:
    """`model`'s answer to `prompt` token by token: each token's probability, the `alternatives`
    most likely tokens and the entropy at each step. `answer`: the text to score (default: the
    model's own greedy answer of at most `max_new_tokens`). `against`: a second model (another
    scheme, an adapter, a server) — the same answer through both, with the per-token KL and the
    first token where their greedy choices part. A served model (`llamalab.connect`,
    `server.connect()`) gives its own greedy answer's logprobs; it cannot score a given answer.
    `live`: a `LiveStats` the local greedy answer's generation fills (TTFT, prefill and decode
    tokens/s, peak memory: the same measurement as `generate()`). `stop_event` (set from any
    thread) ends the local greedy answer early and inspects the tokens so far; a served answer
    arrives in one response, bounded by `max_new_tokens`."""
    validate.integer("max_new_tokens", max_new_tokens, lo=1)
    validate.integer("alternatives", alternatives, lo=1, hi=MAX_ALTERNATIVES)
    check_prompt(prompt, system, chat)
    if answer is not None:
        validate.text("answer", answer)
    _check_model("model", model)
    if against is not None:
        _check_model("against", against)
    ask = _Ask(prompt, system, chat, max_new_tokens, alternatives, live, stop_event)
    served = [m for m in (model, against) if m is not None and not isinstance(m.engine, Scores)]
    for m in served:
        _require_logprobs(m)
    if served and answer is not None:
        raise InvalidSetting(
            f"{_name(served[0])} is served: a server cannot score a given answer (chat "
            "completions have no teacher forcing).",
            "Leave answer=None to inspect the server's own greedy answer, or load the model "
            "locally (llamalab.load) to force a given one through it.",
        )
    if len(served) == 2:
        raise InvalidSetting(
            "Both models are served: two servers' answers cannot be paired token by token.",
            "Compare a served model against a local one (llamalab.load) of the same model.",
        )
    if served:
        return _with_served(model, against, served[0], ask)
    return _forced(model, against, answer, ask)


@dataclass(frozen=True)
class _Ask:
    prompt: object
    system: str | None
    chat: bool | None
    max_new_tokens: int
    alternatives: int
    live: object = None
    stop_event: object = None


def _check_model(name: str, m) -> None:
    if not isinstance(m, LoadedModel) or not m.is_loaded:
        raise InvalidSetting(
            f"{name}={m!r:.60} is not a loaded model.",
            "Pass what llamalab.load(), llamalab.connect() or server.connect() returns.",
        )


def _name(m) -> str:
    name = f"{m.name} {m.scheme_name}".strip()
    adapters = m.engine if isinstance(m.engine, Adapters) else None
    if adapters is not None and adapters.adapters_switched_off:
        return f"{name}, adapters off"
    attached = adapters is not None and bool(adapters.adapter_names()[0])
    return f"{name} + adapter" if m.adapter or attached else name


def _require_logprobs(m) -> None:
    if not isinstance(m.engine, TokenLogprobs):
        raise LlamalabError(
            f"The {m.engine.name} engine gives neither logits nor per-token logprobs, so its "
            "tokens cannot be inspected.",
            "Load the model with a transformers or llama.cpp backend (llamalab.load), or serve it "
            "on an OpenAI-compatible server that returns logprobs (llamalab.serve).",
        )


# ------------------------------------------------------------ two local models: teacher forcing


def _forced(model, against, answer, ask: _Ask) -> TokenView:
    prompt_ids = model.engine.encode(ask.prompt, system=ask.system, chat=ask.chat)
    if answer is None:
        ids, answer_from = _greedy_ids(model, ask), f"{_name(model)} (greedy)"
    else:
        ids, answer_from = model.engine.tokenize(answer), "given"
    if against is not None:
        _check_same_tokens(model, against, prompt_ids, ids, ask)
    _check_fits(model, prompt_ids, ids)
    lp = torch_thread.run(_answer_log_probs, model.engine, prompt_ids, ids)
    other_lp = (
        torch_thread.run(_answer_log_probs, against.engine, prompt_ids, ids) if against else None
    )
    if other_lp is not None and other_lp.shape != lp.shape:
        raise TokenizersDiffer(
            f"The vocabularies differ ({lp.shape[-1]} vs {other_lp.shape[-1]} tokens).",
            "Compare two versions (schemes, adapters) of the same model.",
        )
    steps = tuple(
        _forced_step(
            model.engine, i, tok, lp[i], other_lp[i] if other_lp is not None else None, ask
        )
        for i, tok in enumerate(ids)
    )
    return TokenView(
        steps=steps,
        answer=model.engine.decode(ids),
        model=model.name,
        scheme=model.scheme_name,
        method=f"teacher forcing through {model.engine.name} (the whole vocabulary)",
        answer_from=answer_from,
        entropy_complete=True,
        other=_name(against) if against is not None else "",
        other_method=f"teacher forcing through {against.engine.name}" if against else "",
    )


def _greedy_ids(model, ask: _Ask) -> list[int]:
    g = model.generate(
        ask.prompt,
        system=ask.system,
        chat=ask.chat,
        max_new_tokens=ask.max_new_tokens,
        temperature=0.0,
        live=ask.live,
        stop_event=ask.stop_event,
    )
    return list(g.token_ids)


def _check_same_tokens(model, against, prompt_ids, ids, ask: _Ask) -> None:
    """The second model must read the same prompt ids, and the answer's ids must mean the same
    text to it."""
    other_prompt = against.engine.encode(ask.prompt, system=ask.system, chat=ask.chat)
    if other_prompt != prompt_ids or against.engine.decode(ids) != model.engine.decode(ids):
        raise TokenizersDiffer(
            f"{_name(model)} and {_name(against)} tokenize the prompt or the answer differently "
            f"({len(prompt_ids)} vs {len(other_prompt)} prompt tokens).",
            "Compare two versions (schemes, adapters) of the same model: they share a tokenizer.",
        )


def _check_fits(model, prompt_ids, ids) -> None:
    limit = model.engine.context_length
    if limit and len(prompt_ids) + len(ids) > limit:
        raise PromptTooLong(len(prompt_ids), len(ids), limit)


def _answer_log_probs(engine, prompt_ids: list[int], ids: list[int]):
    """log-softmax rows predicting each answer token (float64 numpy [len(ids), vocab]), from one
    forward pass over prompt + answer (the last answer token predicts nothing, so it is left
    out)."""
    import numpy as np

    logits = engine.logits(list(prompt_ids) + list(ids)[:-1])[len(prompt_ids) - 1 :]
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _forced_step(engine, i: int, token_id: int, lp, other_lp, ask: _Ask) -> TokenStep:
    import numpy as np

    p = np.exp(lp)
    top = _top(engine, p, ask.alternatives)
    step = TokenStep(
        position=i,
        token=engine.piece(token_id),
        token_id=token_id,
        prob=float(p[token_id]),
        entropy=float(-(p * lp).sum()),
        top=top,
    )
    if other_lp is None:
        return step
    q = np.exp(other_lp)
    return _paired(
        step,
        other_prob=float(q[token_id]),
        other_top=_top(engine, q, 1)[0],
        kl=max(float((p * (lp - other_lp)).sum()), 0.0),
    )


def _top(engine, p, k: int) -> tuple[Alternative, ...]:
    import numpy as np

    idx = np.argpartition(-p, k - 1)[:k]
    idx = idx[np.argsort(-p[idx], kind="stable")]
    return tuple(Alternative(engine.piece(int(j)), float(p[j]), int(j)) for j in idx)


def _paired(step: TokenStep, **other) -> TokenStep:
    return replace(step, **other)


# ------------------------------------------------------------------ a served model


def _with_served(model, against, served, ask: _Ask) -> TokenView:
    """The server's greedy answer with its logprobs; a local model, if given, scores the same
    tokens by teacher forcing."""
    messages = served.engine.encode(ask.prompt, system=ask.system, chat=ask.chat)
    sampling = Sampling(max_new_tokens=ask.max_new_tokens, temperature=0.0)
    tokens, _ = served.engine.answer_logprobs(messages, sampling, ask.alternatives)
    served_steps = tuple(_served_step(i, t) for i, t in enumerate(tokens))
    method = (
        "the server's logprobs on its own greedy answer (prompt rendered by the server's chat "
        "template; entropy over the listed alternatives only: a lower bound)"
    )
    answer = "".join(t.text for t in tokens)
    local = against if model is served else model
    if local is None:
        return TokenView(
            served_steps,
            answer,
            model.name,
            model.scheme_name,
            method,
            f"{_name(model)} (greedy)",
            entropy_complete=False,
        )
    ids = _local_ids(local, served, tokens)
    prompt_ids = local.engine.encode(ask.prompt, system=ask.system, chat=ask.chat)
    method += _same_prompt(served, local, messages, prompt_ids)
    _check_fits(local, prompt_ids, ids)
    lp = torch_thread.run(_answer_log_probs, local.engine, prompt_ids, ids)
    local_steps = [_forced_step(local.engine, i, t, lp[i], None, ask) for i, t in enumerate(ids)]
    local_method = f"teacher forcing through {local.engine.name} (the whole vocabulary)"
    sides = [(served_steps, method), (local_steps, local_method)]
    (mine, how), (theirs, their_how) = sides if model is served else sides[::-1]
    return TokenView(
        tuple(_paired(s, other_prob=o.prob, other_top=o.top[0]) for s, o in zip(mine, theirs)),
        answer,
        model.name,
        model.scheme_name,
        how,
        f"{_name(served)} (greedy)",
        model is not served,  # the local model's entropy covers the whole vocabulary
        _name(local if model is served else served),
        their_how,
    )


def _same_prompt(served, local, messages, prompt_ids) -> str:
    """Whether the server read the prompt ids the local model reads (where the server says what
    it read: llama.cpp's /apply-template and /tokenize); refuse a pairing over different prompts."""
    asked = getattr(served.engine, "prompt_ids", None)
    theirs = asked(messages) if asked is not None else None
    if theirs is None:
        return "; not verified that the server read the same prompt ids (it cannot say)"
    if list(theirs) == list(prompt_ids):
        return f"; the server read the same {len(theirs)} prompt ids (checked)"
    at = next((i for i, (a, b) in enumerate(zip(theirs, prompt_ids)) if a != b), None)
    at = min(len(theirs), len(prompt_ids)) if at is None else at
    raise TokenizersDiffer(
        f"{_name(served)} read the prompt as {len(theirs)} token ids and {_name(local)} as "
        f"{len(prompt_ids)}; they part at position {at} "
        f"({local.engine.decode(theirs[at : at + 3])!r} vs "
        f"{local.engine.decode(prompt_ids[at : at + 3])!r}).",
        "The two render or tokenize the chat differently (template, BOS, system prompt): compare "
        "a served GGUF with the same GGUF loaded in-process, or pass the same system= to both.",
    )


def _served_step(i: int, t: TokenLogprob) -> TokenStep:
    top = tuple(Alternative(text, math.exp(lp), tid) for tid, text, lp in t.top)
    return TokenStep(
        position=i,
        token=t.text,
        token_id=t.id,
        prob=math.exp(t.logprob),
        entropy=-sum(a.prob * math.log(a.prob) for a in top if a.prob > 0),
        top=top,
    )


def _same_piece(local_piece: str, served_text: str, token_id: int, local) -> bool:
    """One piece of a multi-byte character reads as U+FFFD alone, on either side; the server
    sends an end-of-turn token (a special token) as empty text."""
    if local_piece == served_text or "\ufffd" in local_piece + served_text:
        return True
    return served_text == "" and local.engine.decode([token_id]) == ""


def _local_ids(local, served, tokens: list[TokenLogprob]) -> list[int]:
    """The served answer's token ids as the local model knows them: the server's own ids (llama.cpp
    sends them) when the local tokenizer reads each as the same text, else the local tokenizer's
    ids for the answer when it cuts it into the same pieces."""
    texts = [t.text for t in tokens]
    given = [t.id for t in tokens]
    ids = given if None not in given else local.engine.tokenize("".join(texts))
    pieces = [local.engine.piece(i) for i in ids]
    if len(pieces) == len(texts) and all(map(_same_piece, pieces, texts, ids, [local] * len(ids))):
        return ids
    raise TokenizersDiffer(
        f"{_name(served)} and {_name(local)} do not share a tokenizer: the server's tokens "
        f"{texts[:5]} read as {pieces[:5]} locally.",
        "Compare a served model with a local copy of the same model (the same GGUF, or its "
        "source checkpoint).",
    )


def _same(a: Alternative, b: Alternative) -> bool:
    if a.token_id is not None and b.token_id is not None:
        return a.token_id == b.token_id
    return a.token == b.token
