"""Quality of a loaded model on a held-out text: perplexity (always labelled) and the divergence of
its next-token distributions from a reference scheme (mean KL and top-1 agreement).

Both score the same token windows: the text is tokenized once with the model's own (HF) tokenizer,
cut into windows of `window` tokens starting every `stride` tokens (at least one token of overlap,
so no target goes unscored), and each target token (all but the first) is scored exactly once. Works
for every engine that declares `Scores` (transformers and llama.cpp); any other raises a clear
error. The scoring runs on the one torch thread, like every torch op of the kit.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core import torch_thread
from ..core.errors import InvalidSetting
from ..engines.base import Scores, require

DEFAULT_TOKENS, DEFAULT_WINDOW = 2048, 512
CANNOT_SCORE = (
    "give per-position logits, so perplexity and KL cannot be measured for it",
    "Score a model loaded with a transformers or llama.cpp backend (llamalab.load).",
)


@dataclass(frozen=True)
class Perplexity:
    """exp(mean negative log-likelihood per token) of `tokens` target tokens of `text`."""

    value: float
    nll_per_token: float  # nats
    tokens: int  # target tokens scored
    text: str  # which text (name) and its source
    source: str
    window: int  # tokens per scored window
    stride: int  # tokens between window starts
    model: str = ""
    scheme: str = ""
    per: str = "token"

    @property
    def label(self) -> str:
        return (
            f"perplexity per token = {self.value:.3f} on {self.text} ({self.tokens} tokens scored; "
            f"window {self.window}, stride {self.stride})"
        )

    def __str__(self) -> str:
        return f"{self.model} {self.scheme}: {self.label}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Divergence:
    """How far a model's next-token distributions are from a reference's on the same positions."""

    kl_mean: float  # mean over positions of KL(reference ‖ model), nats
    top1_agreement: float  # share of positions where both pick the same most likely token
    tokens: int
    text: str
    window: int
    stride: int
    model: str = ""
    scheme: str = ""
    reference: str = ""

    @property
    def label(self) -> str:
        return (
            f"KL({self.reference} ‖ {self.scheme}) = {self.kl_mean:.4f} nats/token, "
            f"top-1 agreement {self.top1_agreement:.1%} on {self.text} ({self.tokens} tokens; "
            f"window {self.window}, stride {self.stride})"
        )

    def __str__(self) -> str:
        return self.label

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Window:
    start: int  # first token of the window in the text's ids
    first_target: int  # index inside the window of the first position that is scored


def windows(n: int, window: int, stride: int) -> list[Window]:
    """Windows of `window` tokens every `stride` tokens; each target (ids[1:])
    scored exactly once."""
    if window < 2 or not 1 <= stride <= window:
        raise InvalidSetting(
            f"window={window}, stride={stride}: need window ≥ 2 and 1 ≤ stride ≤ window.",
            "Use e.g. window=512, stride=512 (no overlap) or stride=256 (more context per token).",
        )
    out, scored_to = [], 1  # targets [1, scored_to) already scored
    start = 0
    while scored_to < n:
        end = min(start + window, n)
        out.append(Window(start, max(scored_to - start, 1)))
        scored_to = end
        if end == n:
            break
        start = min(start + stride, scored_to - 1)  # ≥ 1 token of context before the next target
    return out


def _text(text):
    from ..data import texts

    if text is None:
        t = texts.heldout()
        return t.name, t.source, t.text
    if isinstance(text, texts.Text):
        return text.name, text.source, text.text
    return "user text", "given by the caller", str(text)


def _token_ids(loaded, text: str, tokens: int) -> list[int]:
    ids = require(loaded.engine, Scores, *CANNOT_SCORE).tokenize(text)
    if len(ids) < 2:
        raise InvalidSetting("The text is shorter than 2 tokens.", "Pass a longer text.")
    return ids[:tokens] if tokens else ids


def log_probs(loaded, ids: list[int]):
    """log-softmax of the model's next-token logits at every position: torch float32
    [len(ids), vocab]. The engine's `logits(ids)` gives them; an engine that does not declare
    `Scores` cannot be scored."""
    import torch

    engine = require(loaded.engine, Scores, *CANNOT_SCORE)
    return torch.log_softmax(torch.from_numpy(engine.logits(ids)).float(), dim=-1)


def _scored(loaded, ids, window, stride):
    """(targets, log-probs of the positions predicting them) for each window."""
    import torch

    for w in windows(len(ids), window, stride):
        chunk = ids[w.start : w.start + window]
        lp = log_probs(loaded, chunk)[w.first_target - 1 : len(chunk) - 1]
        yield torch.tensor(chunk[w.first_target :]), lp


def perplexity(
    loaded,
    text=None,
    *,
    tokens: int = DEFAULT_TOKENS,
    window: int = DEFAULT_WINDOW,
    stride: int | None = None,
) -> Perplexity:
    """Per-token perplexity of `loaded` on `text` (default: the bundled held-out KJV Luke 1–4),
    first `tokens` tokens, windows of `window` tokens every `stride`
    (default = window, no overlap)."""
    name, source, body = _text(text)
    stride = stride or window
    return torch_thread.run(
        _perplexity, loaded, _token_ids(loaded, body, tokens), name, source, window, stride
    )


def _perplexity(loaded, ids, name, source, window, stride, on_window=None) -> Perplexity:
    """Score every window; `on_window(i, log_probs)` sees each window's log-probs on the way."""
    nll, n = 0.0, 0
    for i, (targets, lp) in enumerate(_scored(loaded, ids, window, stride)):
        if on_window:
            on_window(i, lp)
        nll -= lp.gather(1, targets[:, None]).sum().item()
        n += len(targets)
    return Perplexity(
        math.exp(nll / n), nll / n, n, name, source, window, stride, loaded.name, loaded.scheme_name
    )


class Reference:
    """A reference model's log-probs on a text, kept on disk (one .npy per window) so comparing many
    schemes needs neither the reference model nor its ~400 MB of log-probs in memory."""

    def __init__(
        self,
        loaded,
        text=None,
        *,
        tokens: int = DEFAULT_TOKENS,
        window: int = DEFAULT_WINDOW,
        stride: int | None = None,
    ):
        import numpy as np

        self.text_name, self.source, self.body = _text(text)
        self.window, self.stride = window, stride or window
        self.scheme, self.model = loaded.scheme_name, loaded.name
        self.ids = _token_ids(loaded, self.body, tokens)
        self.dir = Path(tempfile.mkdtemp(prefix="llamalab-reference-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, True)
        self.perplexity = torch_thread.run(
            _perplexity,
            loaded,
            self.ids,
            self.text_name,
            self.source,
            window,
            self.stride,
            on_window=lambda i, lp: np.save(self.dir / f"{i}.npy", lp.numpy()),
        )

    def window_log_probs(self, i: int):
        import numpy as np
        import torch

        return torch.from_numpy(np.load(self.dir / f"{i}.npy"))

    def close(self) -> None:
        self._cleanup()


def divergence(
    loaded,
    reference,
    text=None,
    *,
    tokens: int = DEFAULT_TOKENS,
    window: int = DEFAULT_WINDOW,
    stride: int | None = None,
) -> Divergence:
    """Mean KL(reference ‖ loaded) of next-token distributions and top-1 agreement, position by
    position. `reference` is another LoadedModel (same tokenizer) or a `Reference` computed
    beforehand."""
    return score_against(loaded, reference, text, tokens=tokens, window=window, stride=stride)[1]


def score_against(
    loaded,
    reference,
    text=None,
    *,
    tokens: int = DEFAULT_TOKENS,
    window: int = DEFAULT_WINDOW,
    stride: int | None = None,
) -> tuple[Perplexity, Divergence]:
    """`loaded`'s perplexity and its divergence from `reference` on the same positions, from one
    pass over the text (the same numbers as perplexity() and divergence(), half the forwards)."""
    if isinstance(reference, Reference):
        ref_scheme, ids, body = reference.scheme, reference.ids, reference.body
        window, stride, name = reference.window, reference.stride, reference.text_name
        source, ref_lp = reference.source, reference.window_log_probs
    else:
        name, source, body = _text(text)
        stride = stride or window
        ids = _token_ids(reference, body, tokens)
        ref_scheme = reference.scheme_name
        ref_windows = _scored(reference, ids, window, stride)
        ref_lp = lambda i: next(ref_windows)[1]
    if _token_ids(loaded, body, len(ids)) != ids:
        raise InvalidSetting(
            "The model and the reference tokenize the text differently.",
            "Compare models that share a tokenizer.",
        )
    kl, agree, nll, n = torch_thread.run(_divergence, loaded, ids, window, stride, ref_lp)
    model, scheme = loaded.name, loaded.scheme_name
    return (
        Perplexity(math.exp(nll / n), nll / n, n, name, source, window, stride, model, scheme),
        Divergence(kl / n, agree / n, n, name, window, stride, model, scheme, ref_scheme),
    )


ROWS_PER_CHUNK = (
    64  # 64 × a 49K vocabulary × 4 bytes = 12.6 MB per temporary instead of 100 MB for 512 rows
)


def _divergence(loaded, ids, window, stride, ref_lp) -> tuple[float, int, float, int]:
    """Sums of KL, top-1 agreements and the model's negative log-likelihood, and the positions
    scored (runs on the torch thread)."""
    kl, agree, nll, n = 0.0, 0, 0.0, 0
    for i, (targets, lp) in enumerate(_scored(loaded, ids, window, stride)):
        nll -= lp.gather(1, targets[:, None]).sum().item()
        r = ref_lp(i)
        if r.shape != lp.shape:
            raise InvalidSetting(
                f"Vocabulary sizes differ ({r.shape[-1]} vs {lp.shape[-1]}).",
                "Compare models that share a tokenizer.",
            )
        for a in range(0, len(lp), ROWS_PER_CHUNK):  # [rows, vocab] temporaries stay small
            rr, ll = r[a : a + ROWS_PER_CHUNK], lp[a : a + ROWS_PER_CHUNK]
            kl += (rr.exp() * (rr - ll)).sum().item()
            agree += (rr.argmax(-1) == ll.argmax(-1)).sum().item()
        n += len(targets)
    return kl, agree, nll, n


def greedy_answers(reference, model, prompts, max_new_tokens: int) -> tuple[tuple, float]:
    """Both models' greedy answers to each prompt, and the share of prompts where they are
    identical (NaN without prompts): the export checks' "same answers" figure."""
    answers = []
    for p in prompts:
        a = reference.generate(p, max_new_tokens=max_new_tokens).text
        b = model.generate(p, max_new_tokens=max_new_tokens).text
        answers.append({"prompt": p, "source": a, "gguf": b, "identical": a == b})
    same = sum(a["identical"] for a in answers) / len(answers) if answers else float("nan")
    return tuple(answers), same
