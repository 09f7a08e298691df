"""The llama.cpp engine (in-process, through llama-cpp-python) for GGUF files.

Same Engine protocol as the transformers engine. Prompts are encoded with the Hugging Face tokenizer
of the same model and fed to llama.cpp as token ids, so every engine sees identical prompts; the
loop around `Llama.generate` only counts tokens and checks for stop (benchmarks/engines.py measures
its cost).
"""

from __future__ import annotations

import os
import threading
import weakref

from ..catalog import GGUF_FILE_TYPES
from ..core import container
from ..core.errors import InvalidSetting
from ..core.tasks import on_exit
from .base import Engine, HFTokenized, Sampling, Scores

DEFAULT_CONTEXT = 2048
_live: weakref.WeakSet[LlamaCppEngine] = weakref.WeakSet()


@on_exit
def _close_all() -> None:
    """Free llama.cpp models before interpreter teardown (llama-cpp-python's __del__ fails then)."""
    for engine in list(_live):
        if engine._busy.acquire(timeout=5):  # a call stuck in a daemon thread: leave it to the OS
            try:
                engine.unload()
            finally:
                engine._busy.release()


def file_type(llm) -> str:
    """The GGUF's weight type as a scheme name (from its general.file_type metadata)."""
    raw = llm.metadata.get("general.file_type")
    return GGUF_FILE_TYPES.get(int(raw), f"ftype {raw}") if raw is not None else "unknown"


def default_threads() -> int:
    """The CPUs this process may use: its affinity set, capped by a container's CPU quota (a 2-CPU
    pod on a 64-core node gets 2 threads, not 64) and by OMP_NUM_THREADS where it is set (the one
    thread budget torch follows too; llama.cpp's threads spin at each step, so more threads than
    free cores stall them)."""
    n = container.usable_cpus(container.limits().cpu_quota)
    budget = os.environ.get("OMP_NUM_THREADS", "")
    return min(n, int(budget)) if budget.isdigit() and int(budget) > 0 else n


class LlamaCppEngine(HFTokenized, Engine, Scores):
    """A GGUF model in llama.cpp. `logits(ids)` scores every position (used by perplexity / KL).
    llama.cpp runs its own thread pool, so it does not use the torch thread
    (uses_torch_thread False)."""

    name = "llama.cpp"

    def __init__(
        self,
        path: str,
        tokenizer,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_CONTEXT,
        n_gpu_layers: int = 0,
        use_mmap: bool = True,
        lora_path: str | None = None,
    ):
        """`use_mmap=False` reads the weights into llama.cpp's own memory instead of mapping the
        file (what a type llama.cpp repacks while loading needs to be counted once). `lora_path`:
        a GGUF LoRA adapter applied at scale 1 (llama.cpp's own `--lora`)."""
        from llama_cpp import Llama

        self.path, self.tokenizer = str(path), tokenizer
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers, self.use_mmap = n_gpu_layers, use_mmap
        self.lora_path = lora_path
        self.llm = Llama(
            self.path,
            lora_path=lora_path,
            n_ctx=n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_gpu_layers=n_gpu_layers,
            use_mmap=use_mmap,
            verbose=False,
        )
        self.context_length = self.llm.n_ctx()
        self.file_type = file_type(self.llm)
        self.eos = {self.llm.token_eos()} | _hf_eos(tokenizer)
        self._scorer = None
        # one call at a time: unload() from another thread waits for a running generate or
        # logits instead of freeing the context under it (a segfault in llama.cpp)
        self._busy = threading.RLock()
        _live.add(self)

    def generate(self, prompt_ids, sampling: Sampling, on_token, should_stop) -> None:
        with self._busy:
            self._generate(prompt_ids, sampling, on_token, should_stop)

    def _generate(self, prompt_ids, sampling: Sampling, on_token, should_stop) -> None:
        llm, eos = self.llm, self.eos
        if sampling.seed is not None:
            llm.set_seed(sampling.seed)
        # no prompt-prefix reuse between calls: every call pays its prefill, as in transformers
        llm.reset()
        greedy = sampling.greedy
        n, limit, floor = 0, sampling.max_new_tokens, sampling.min_new_tokens
        for token in llm.generate(
            prompt_ids,
            temp=0.0 if greedy else sampling.temperature,
            top_k=0 if greedy else sampling.top_k,
            top_p=1.0 if greedy else sampling.top_p,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=1.0,
            reset=True,
        ):
            n += 1
            on_token(token)
            if n >= limit or (token in eos and n > floor) or should_stop():
                break

    def logits(self, ids: list[int]):
        """Logits (float32 numpy, [len(ids), vocab]) for every position, from a second context
        created with logits_all=True (the generation context keeps only the last row, which is
        faster)."""
        if len(ids) > self.context_length:
            raise InvalidSetting(
                f"{len(ids)} tokens exceed this GGUF context of {self.context_length}.",
                "Score shorter windows (perplexity(window=...)).",
            )
        with self._busy:
            return self._logits(ids)

    def _logits(self, ids: list[int]):
        if self._scorer is None or self._scorer.n_ctx() < len(ids):
            from llama_cpp import Llama

            if self._scorer is not None:
                self._scorer.close()
            # logits_all needs an n_batch-row output; the compute buffer scales with
            # n_ubatch (kept small).
            self._scorer = Llama(
                self.path,
                lora_path=self.lora_path,
                n_ctx=max(len(ids), 512),
                n_batch=max(len(ids), 512),
                n_ubatch=128,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=self.n_gpu_layers,
                use_mmap=self.use_mmap,
                logits_all=True,
                verbose=False,
            )
        s = self._scorer
        s.reset()
        s.eval(list(ids))
        return s.scores[: len(ids)].copy()

    def weights_bytes(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_model_size(self.llm.model))

    def unload(self) -> None:
        with self._busy:
            for llm in (getattr(self, "llm", None), getattr(self, "_scorer", None)):
                if llm is not None:
                    llm.close()
            self.llm = self._scorer = self.tokenizer = None


def _hf_eos(tokenizer) -> set[int]:
    ids = getattr(tokenizer, "eos_token_id", None)
    if ids is None:
        return set()
    return set(ids) if isinstance(ids, (list, tuple)) else {ids}
