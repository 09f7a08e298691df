"""LoRA adapters on a running llama.cpp server: list them (GET /lora-adapters), switch the one
every request uses (POST /lora-adapters: the scales of all of them at once), the per-request
`lora` field, and the check that the served adapter answers as the in-process base + adapter.

llama.cpp names adapters by id (the order they were loaded in) and ignores ids it does not have
(POST and per-request alike): the kit keeps the names and refuses an unknown one itself.

The check is teacher-forced: the reference's greedy answer is fed to the server one position at
a time (`/completion`, `n_predict=1`, `n_probs=top_k`), so both score the same contexts. Top-1
agreement is exact; the KL is over the server's top-k tokens plus one bucket for the rest of the
vocabulary, a lower bound of the full KL (merging outcomes never raises a KL)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..core import torch_thread
from ..core.errors import InvalidSetting, LlamalabError
from .adapter_export import ADAPTER_MIN_TOP1, kl_tolerance

TOP_K = 20  # top_logprobs the server returns per position (llama.cpp's OpenAI default)


class UnknownAdapter(InvalidSetting):
    """An adapter name the server was not started with."""


class NoAdapters(LlamalabError):
    """The server was started without adapters."""


@dataclass(frozen=True)
class Agreement:
    """The server against an in-process reference on the reference's own greedy answers."""

    top1_agreement: float  # share of positions where both pick the same next token
    kl_mean: float  # nats/token, KL(reference ‖ server) over top-k + rest (a lower bound)
    positions: int
    prompts: int


@dataclass(frozen=True)
class ServedAdapterCheck:
    """The served adapter against the in-process base + adapter, and with it switched off
    against the in-process base."""

    name: str
    scale: float
    adapter: Agreement
    base: Agreement | None
    kl_tolerance: float
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        base = (
            f"; off: top-1 {100 * self.base.top1_agreement:.1f} % with the base"
            if self.base
            else ""
        )
        return (
            f"Served adapter {self.name!r} {'passed' if self.passed else 'FAILED'}: top-1 "
            f"{100 * self.adapter.top1_agreement:.1f} %, "
            f"KL ≥ {self.adapter.kl_mean:.3g} nats/token "
            f"(tolerance {self.kl_tolerance:.3g}) over {self.adapter.positions} positions{base}"
        )


def adapter_id(names: list[str], name: str) -> int:
    """The server's id for adapter `name`; UnknownAdapter or NoAdapters otherwise."""
    if not names:
        raise NoAdapters(
            "This server was started without adapters.",
            "Start it with serve(base_gguf, adapters={'name': 'adapter.gguf'}) "
            "(llamalab.export_gguf(run.adapter_dir) writes the adapter GGUF).",
        )
    if name not in names:
        raise UnknownAdapter(
            f"This server has no adapter {name!r}.",
            f"It was started with {', '.join(map(repr, names))}; pass one of those, or None "
            "for the base alone.",
        )
    return names.index(name)


def scales(names: list[str], name: str | None, scale: float = 1.0) -> list[dict]:
    """Every adapter's scale (llama.cpp sets the ones not listed to 0): `name` at `scale`, the
    others at 0; all at 0 for None."""
    if name is None and not names:
        adapter_id(names, "")  # NoAdapters
    on = None if name is None else adapter_id(names, name)
    if not 0 <= scale <= 4 or not math.isfinite(scale):
        raise InvalidSetting(f"scale={scale} is out of range.", "Use 0 … 4 (1.0: as trained).")
    return [{"id": i, "scale": scale if i == on else 0.0} for i in range(len(names))]


def post(server, path: str, body, timeout: float = 60):
    """POST on our own server with its key, never through a proxy from the environment."""
    import httpx

    headers = {"Authorization": f"Bearer {server.key.value}"}
    with httpx.Client(trust_env=False, timeout=timeout) as client:
        r = client.post(server.url + path, json=body, headers=headers)
    if r.status_code != 200:
        raise LlamalabError(
            f"{path} answered {r.status_code}: {r.text[:300]}",
            "Read the server's log (server.tail()).",
        )
    return r.json()


def check(
    server,
    name: str,
    reference,
    base=None,
    prompts=(),
    max_new_tokens: int = 16,
    scale: float = 1.0,
    top_k: int = TOP_K,
    base_kl: float = 0.0,
) -> ServedAdapterCheck:
    """Compare the served adapter (per-request `lora`, so other clients keep the global setting)
    with `reference` (the in-process base + adapter), and, given `base` (the in-process base),
    the server with every adapter off with it. Passes when top-1 ≥ ADAPTER_MIN_TOP1 both ways and
    the adapter's KL is within the export's tolerance for a base KL of `base_kl`."""
    names = server.adapter_names
    on = {"lora": scales(names, name, scale)}
    adapter = _agreement(server, reference, prompts, max_new_tokens, on, top_k)
    off = None
    if base is not None:
        off = _agreement(
            server, base, prompts, max_new_tokens, {"lora": scales(names, None)}, top_k
        )
    tol = kl_tolerance(base_kl)
    ok = adapter.top1_agreement >= ADAPTER_MIN_TOP1 and adapter.kl_mean <= tol
    ok = ok and (off is None or off.top1_agreement >= ADAPTER_MIN_TOP1)
    return ServedAdapterCheck(name, scale, adapter, off, tol, ok)


def _agreement(server, reference, prompts, max_new_tokens, lora, top_k) -> Agreement:
    agree, kl, n = 0, 0.0, 0
    for p in prompts:
        ids = reference.engine.encode(p)
        answer = list(reference.generate(p, max_new_tokens=max_new_tokens).token_ids)
        rows = _log_probs(reference, ids + answer)
        for i in range(len(answer)):
            served = _served_top(server, ids + answer[:i], lora, top_k)
            ref = rows[len(ids) + i - 1]
            agree += int(max(served, key=served.get) == int(ref.argmax()))
            kl += _bucketed_kl(ref, served)
            n += 1
    return Agreement(
        agree / n if n else float("nan"), kl / n if n else float("nan"), n, len(prompts)
    )


def _log_probs(reference, ids):
    """The reference's next-token log-probabilities at every position (numpy, [len(ids), vocab])."""
    import numpy as np

    def rows():
        import torch

        logits = reference.engine.logits(list(ids))
        t = logits if isinstance(logits, torch.Tensor) else torch.as_tensor(np.asarray(logits))
        return torch.log_softmax(t.float(), dim=-1).numpy()

    return torch_thread.run(rows)


def _served_top(server, ids, lora, top_k) -> dict[int, float]:
    """{token id: log-probability} of the server's top_k next tokens after `ids`."""
    body = {
        "prompt": list(ids),
        "n_predict": 1,
        "n_probs": top_k,
        "temperature": 0.0,
        "cache_prompt": False,  # a slot's cache may hold another adapter's prompt (Server.connect)
        **lora,
    }
    r = post(server, "/completion", body)
    probs = r.get("completion_probabilities") or []
    if not probs or not probs[0].get("top_logprobs"):
        raise LlamalabError(
            "The server returned no token probabilities (completion_probabilities).",
            "This llama.cpp build may name them differently; read server.tail().",
        )
    return {int(t["id"]): float(t["logprob"]) for t in probs[0]["top_logprobs"]}


def _bucketed_kl(ref_log_probs, served: dict[int, float]) -> float:
    """KL(ref ‖ served) over the served top-k tokens plus one bucket for all others."""
    ids = list(served)
    p = [math.exp(float(ref_log_probs[i])) for i in ids]
    q = [math.exp(served[i]) for i in ids]
    p_rest, q_rest = max(1.0 - sum(p), 0.0), max(1.0 - sum(q), 1e-12)
    kl = sum(pi * math.log(pi / max(qi, 1e-12)) for pi, qi in zip(p, q) if pi > 0)
    return max(kl + (p_rest * math.log(p_rest / q_rest) if p_rest > 0 else 0.0), 0.0)
