"""Check that a served GGUF answers a chat as the kit does in-process: llama.cpp's server renders
the chat with the GGUF's own template and stops on its own end-of-generation tokens, so this is
where a template or stop token that changed in export shows in an answer.

For each check conversation, the server's greedy answer (/v1/chat/completions, temperature 0, no
prompt cache) is compared with the in-process greedy answer of the same file, prompted through the
source tokenizer's template: the prompt must be as many tokens, the finish reason the same
("stop": it ended at an end-of-turn), the text the same or, where two llama.cpp builds break a
near tie differently, not one answer running on past the other's end; and no template token (the
source's special tokens, such as "<|im_end|>") may appear in the served text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import load
from .template_check import CONVERSATIONS, ExportMismatch, source_chat


@dataclass(frozen=True)
class StopCheck:
    """Served and in-process greedy answers to the check conversations, compared."""

    conversations: int
    same_text: float  # share of conversations whose two answers are identical
    answers: tuple[dict, ...] = field(repr=False)  # per conversation: both texts, finish reasons

    def to_dict(self) -> dict:
        return {"conversations": self.conversations, "same_text": self.same_text}


def check_served_stop(
    server_or_gguf, source="default", max_new_tokens: int = 64, conversations=CONVERSATIONS
) -> StopCheck:
    """Compare a running `Server` (or a .gguf file, served here for the check and stopped after)
    with the same file in-process, on `conversations`; ExportMismatch names each difference."""
    from .server import Server, serve

    if isinstance(server_or_gguf, Server):
        return _check(server_or_gguf, source, max_new_tokens, conversations)
    with serve(str(server_or_gguf), parallel=1, context=512) as server:
        return _check(server, source, max_new_tokens, conversations)


def _check(server, source, max_new_tokens: int, conversations) -> StopCheck:
    src = source_chat(source)
    local = load(
        server.gguf, "gguf", device="cpu", tokenizer=src.tokenizer, n_threads=server.threads
    )
    try:
        rows = [
            _row(name, local, server, list(msgs), max_new_tokens) for name, msgs in conversations
        ]
    finally:
        local.unload()
    special = sorted(set(getattr(src.tokenizer, "all_special_tokens", ())), key=len, reverse=True)
    diffs = [d for row in rows for d in _differences(row, special)]
    if diffs:
        raise ExportMismatch(
            f"The served {Path(server.gguf).name}",
            diffs,
            "Check the file with llamalab.serving.template_check.check_template(gguf, source): "
            "its tokenizer.chat_template or end-of-turn tokens are not the source's.",
        )
    same = sum(r["served"] == r["in_process"] for r in rows) / len(rows)
    return StopCheck(conversations=len(rows), same_text=same, answers=tuple(rows))


def _row(name: str, local, server, messages: list[dict], max_new_tokens: int) -> dict:
    mine = local.generate(messages, max_new_tokens=max_new_tokens, temperature=0.0)
    served = _served(server, messages, max_new_tokens)
    choice, usage = served["choices"][0], served.get("usage") or {}
    return {
        "conversation": name,
        "in_process": mine.text,
        "in_process_finish": mine.finish_reason,
        "in_process_prompt_tokens": mine.prompt_tokens,
        "served": choice["message"].get("content") or "",
        "served_finish": choice.get("finish_reason"),
        "served_prompt_tokens": usage.get("prompt_tokens"),
        "diverged_at": _diverged_at(mine.text, choice["message"].get("content") or ""),
    }


def _diverged_at(a: str, b: str) -> int | None:
    """The first character where two answers differ (None: identical)."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _served(server, messages: list[dict], max_new_tokens: int) -> dict:
    """One non-streamed greedy chat completion from our own server (its key, no proxy)."""
    import httpx

    body = {
        "messages": messages,
        "max_tokens": max_new_tokens,
        "temperature": 0.0,
        "cache_prompt": False,  # llama.cpp: each prompt computed afresh, as in-process
    }
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(trust_env=False, timeout=120) as client:
        r = client.post(server.url + "/v1/chat/completions", json=body, headers=headers)
    r.raise_for_status()
    return r.json()


def _differences(row: dict, special: list[str]) -> list[str]:
    name, mine, theirs = row["conversation"], row["in_process"], row["served"]
    out = []
    if row["served_prompt_tokens"] != row["in_process_prompt_tokens"]:
        out.append(
            f"{name}: the server's prompt is {row['served_prompt_tokens']} tokens, the source's "
            f"rendering {row['in_process_prompt_tokens']} (the GGUF's template differs)"
        )
    if row["served_finish"] != row["in_process_finish"]:
        out.append(
            f"{name}: the served answer finished with {row['served_finish']!r}, the in-process "
            f"one with {row['in_process_finish']!r} after {mine!r}"
        )
    leaked = [t for t in special if t in theirs]
    if leaked:
        out.append(f"{name}: the served answer shows template tokens {leaked}: {theirs!r}")
    if mine != theirs and (theirs.startswith(mine) or mine.startswith(theirs)):
        longer, shorter = (theirs, mine) if len(theirs) > len(mine) else (mine, theirs)
        who = "served" if longer is theirs else "in-process"
        out.append(
            f"{name}: the {who} answer runs on past the other's end: {longer[len(shorter) :]!r}"
        )
    return out
