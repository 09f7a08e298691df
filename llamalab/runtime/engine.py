"""The Engine: the one thing that differs between runtimes (transformers, llama.cpp in-process, a
remote OpenAI-compatible server). `LoadedModel` wraps any engine with the same timing, streaming,
stop and memory logic, so nothing above the runtime ever asks which engine it holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import InvalidSetting, LlamalabError
from . import torch_thread


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens. temperature 0 means greedy (deterministic)."""
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_new_tokens: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts an engine reports itself (a server's `usage`); None where it did not say."""
    prompt_tokens: int | None = None
    new_tokens: int | None = None


class Engine:
    """What every engine provides. Subclass it; the class attributes are the defaults.

    - `encode` turns a prompt (string or chat messages) into what `generate` takes: token ids for an
      engine with a tokenizer; an engine without one (a remote server) returns the messages and
      reports the counts in the `Usage` its `generate` returns.
    - `generate` calls `on_token(token)` once per new token — an int id, or a str piece for an engine
      that streams text (`streams_text`) — checks `should_stop()` between tokens, returns Usage or None.
    - `logits(ids)` (optional; quality needs it): float32 array [len(ids), vocab] of next-token logits.
    - `weights_bytes()`: bytes of weights in this process's memory (None for a remote engine).
    """
    name: str = "engine"            # "transformers", "llama.cpp", ... (the `engine` column of every record)
    context_length: int = 0
    remote: bool = False            # runs elsewhere: LoadedModel measures no local memory for it
    streams_text: bool = False      # on_token gets text pieces instead of token ids
    uses_torch_thread: bool = False  # its torch work must run on the runtime's one torch thread

    @property
    def is_chat(self) -> bool:
        return False

    def encode(self, prompt, system: str | None = None, chat: bool | None = None):
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def generate(self, prompt_ids, sampling: Sampling, on_token: Callable[[int | str], None],
                 should_stop: Callable[[], bool]) -> Usage | None:
        raise NotImplementedError

    def weights_bytes(self) -> int | None:
        return None

    def unload(self) -> None:
        pass


def to_messages(prompt, system: str | None) -> list[dict]:
    """A string becomes one user turn; a list of {"role", "content"} dicts is used as is."""
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = [dict(m) for m in prompt]
    if system and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def hf_encode(tokenizer, prompt, system: str | None = None, chat: bool | None = None) -> list[int]:
    """Token ids through a Hugging Face tokenizer: its chat template for chat, plain text otherwise
    (transformers and llama.cpp engines share it, so both see identical prompts)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat if chat is not None else has_template:
        if not has_template:
            raise InvalidSetting("This model has no chat template.", "Pass a plain string with chat=False.")
        enc = tokenizer.apply_chat_template(to_messages(prompt, system), add_generation_prompt=True,
                                            return_dict=True)
        return list(enc["input_ids"])
    text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    return list(tokenizer(text)["input_ids"])


def tensor_bytes(t) -> int:
    """Storage bytes of a tensor, looking inside quantized tensor subclasses (torchao, etc.)."""
    if hasattr(t, "__tensor_flatten__") and type(t).__name__ not in ("Tensor", "Parameter"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


class HFEngine(Engine):
    """Any transformers causal LM (fp, int8, nf4, GPTQ and AWQ all load into one)."""
    name = "transformers"
    uses_torch_thread = True

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        cfg = model.config
        self.context_length = getattr(cfg, "max_position_embeddings", None) or tokenizer.model_max_length

    @property
    def is_chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode(self, prompt, system=None, chat=None) -> list[int]:
        return hf_encode(self.tokenizer, prompt, system, chat)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def generate(self, prompt_ids, sampling: Sampling, on_token, should_stop) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                return torch.full((input_ids.shape[0],), should_stop(), dtype=torch.bool, device=input_ids.device)

        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        ids = torch.tensor([prompt_ids], device=self.model.device)
        with torch.inference_mode():
            self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                generation_config=self._config(sampling),
                                streamer=_TokenStreamer(on_token), stopping_criteria=StoppingCriteriaList([Stop()]))

    def logits(self, ids: list[int]):
        """Next-token logits at every position: float32 numpy [len(ids), vocab], computed on the torch thread."""
        return torch_thread.run(self._logits, ids)

    def _logits(self, ids):
        import torch
        if self.model is None:
            raise LlamalabError("This model was unloaded.", "Load it again with llamalab.load().")
        with torch.inference_mode():
            x = torch.tensor([ids], device=self.model.device)
            return self.model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0].float().cpu().numpy()

    def _config(self, s: Sampling):
        gc = self.model.generation_config.__class__.from_dict(self.model.generation_config.to_dict())
        gc.max_new_tokens, gc.min_new_tokens = s.max_new_tokens, s.min_new_tokens or None
        gc.do_sample = s.temperature > 0
        gc.temperature = s.temperature if gc.do_sample else None
        gc.top_p = s.top_p if gc.do_sample else None
        gc.top_k = (s.top_k or None) if gc.do_sample else None
        if gc.pad_token_id is None:
            gc.pad_token_id = self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
        return gc

    def weights_bytes(self) -> int:
        seen, total = set(), 0
        for t in [*self.model.parameters(), *self.model.buffers()]:
            key = (t.data_ptr(), t.shape) if not hasattr(t, "__tensor_flatten__") else id(t)
            if key not in seen:
                seen.add(key)
                total += tensor_bytes(t)
        return total

    def unload(self) -> None:
        self.model = self.tokenizer = None


class _TokenStreamer:
    """transformers streamer protocol: first put() is the prompt, then one call per new token."""

    def __init__(self, on_token):
        self.on_token, self.prompt_seen = on_token, False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.on_token(token)

    def end(self) -> None:
        pass
