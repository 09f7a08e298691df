"""Any transformers causal LM as an Engine (fp32/bf16/fp16, int8, nf4, GPTQ and AWQ all load into
one): it scores (logits) and takes peft adapters."""

from __future__ import annotations

import copy
import weakref
from contextlib import nullcontext

from ..core import torch_thread
from ..core.errors import InvalidSetting, LlamalabError
from ..core.logs import root_logging_kept
from .base import Adapters, Engine, HFTokenized, Sampling, Scores


def tensor_bytes(t) -> int:
    """Storage bytes of a tensor, looking inside quantized tensor subclasses (torchao, etc.)."""
    if hasattr(t, "__tensor_flatten__") and type(t).__name__ not in ("Tensor", "Parameter"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


class HFEngine(HFTokenized, Engine, Scores, Adapters):
    """A transformers model and its tokenizer; torch work runs on the runtime's one torch thread."""

    name = "transformers"
    uses_torch_thread = True

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.peft_model = None  # the peft wrapper while adapters are attached (training runs in it)
        self._views: list = []  # weak references to adapters_off() handles: unload() empties them
        cfg = model.config
        self.context_length = (
            getattr(cfg, "max_position_embeddings", None) or tokenizer.model_max_length
        )

    def generate(self, prompt_ids, sampling: Sampling, on_token, should_stop) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                return torch.full(
                    (input_ids.shape[0],), should_stop(), dtype=torch.bool, device=input_ids.device
                )

        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        ids = torch.tensor([prompt_ids], device=self.model.device)  # [1, prompt]
        with torch.inference_mode(), self._adapters():
            self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                generation_config=self._config(sampling),
                streamer=_TokenStreamer(on_token),
                stopping_criteria=StoppingCriteriaList([Stop()]),
            )

    def logits(self, ids: list[int]):
        """Next-token logits at every position: float32 numpy [len(ids), vocab],
        computed on the torch thread."""
        return torch_thread.run(self._logits, ids)

    def _logits(self, ids):
        import torch

        if self.model is None:
            raise LlamalabError("This model was unloaded.", "Load it again with llamalab.load().")
        with torch.inference_mode(), self._adapters():
            x = torch.tensor([ids], device=self.model.device)  # [1, n]
            return (
                self.model(input_ids=x, attention_mask=torch.ones_like(x))
                .logits[0]
                .float()
                .cpu()
                .numpy()
            )

    def _config(self, s: Sampling):
        gc = self.model.generation_config.__class__.from_dict(
            self.model.generation_config.to_dict()
        )
        gc.max_new_tokens, gc.min_new_tokens = s.max_new_tokens, s.min_new_tokens or None
        gc.do_sample = not s.greedy
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
        for engine in [self, *filter(None, (ref() for ref in self._views))]:
            engine.model = engine.tokenizer = engine.peft_model = None

    # -------------------------------------------------------- adapters (peft), on the torch thread

    def attach_adapter(self, folder: str, name: str = "default") -> None:
        torch_thread.run(self._attach, str(folder), name)

    def _attach(self, folder: str, name: str) -> None:
        from peft import PeftModel

        if self.peft_model is None:
            with root_logging_kept():  # peft imports gptqmodel, which reconfigures logging
                self.peft_model = PeftModel.from_pretrained(self.model, folder, adapter_name=name)
        elif name in self.peft_model.peft_config:
            raise InvalidSetting(
                f"An adapter called {name!r} is already loaded.", "Pick another name."
            )
        else:
            self.peft_model.load_adapter(folder, adapter_name=name)
        self.model.eval()

    def wrap_for_training(self, config):
        """Inject fresh adapters described by a peft config (only they train);
        returns the peft model."""
        from peft import get_peft_model

        if self.peft_model is not None or getattr(self.model, "peft_config", None):
            raise InvalidSetting(
                "This model already carries adapters.",
                "Load the base again (llamalab.load) or remove its adapters first.",
            )
        with root_logging_kept():  # peft imports gptqmodel, which reconfigures logging
            self.peft_model = get_peft_model(self.model, config)
        return self.peft_model

    def adapters_off(self) -> HFEngine:
        """A second handle on the same weights whose forward passes run with every adapter
        switched off (peft's disable_adapter): the base beside base + adapter, no second copy.
        Unloading the handle leaves the model loaded; unloading the model empties the handle too
        (it would keep the weights in memory otherwise)."""
        if self.peft_model is None:
            raise InvalidSetting(
                "This model carries no adapters to switch off.",
                "Train one (llamalab.finetune) or attach a saved one (load(..., adapter=)).",
            )
        view = copy.copy(self)
        view.adapters_switched_off, view._views = True, []
        self._views.append(weakref.ref(view))
        return view

    def _adapters(self):
        off = self.adapters_switched_off and self.peft_model is not None
        return self.peft_model.disable_adapter() if off else nullcontext()

    def adapter_names(self) -> tuple[list[str], str | None]:
        if self.peft_model is None:
            return [], None
        return list(self.peft_model.peft_config), self.peft_model.active_adapter

    def use_adapter(self, name: str) -> None:
        names, _ = self.adapter_names()
        if name not in names:
            raise InvalidSetting(
                f"No adapter {name!r} on this model.", f"Loaded: {', '.join(names) or 'none'}."
            )
        torch_thread.run(self.peft_model.set_adapter, name)
        self.model.eval()

    def merge_adapters(self) -> None:
        """Add the active adapter's update into the base weights (undo with unmerge_adapters)."""
        torch_thread.run(self.peft_model.merge_adapter)

    def unmerge_adapters(self) -> None:
        torch_thread.run(self.peft_model.unmerge_adapter)

    def remove_adapters(self) -> None:
        if self.peft_model is not None:
            self.model = torch_thread.run(self.peft_model.unload)
            self.peft_model = None


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
