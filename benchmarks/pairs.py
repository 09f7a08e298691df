"""What the kit-vs-raw benchmarks share: the prompt, a raw transformers run timed per token (on the
kit's torch thread), and pairs of runs in alternating order (the second run of a pair is slower)."""

from __future__ import annotations

import time

import llamalab

PROMPT = "Explain what quantization does to a neural network in three sentences."


def raw_transformers(m, ids, n: int) -> tuple[float, list[float]]:
    """model.generate, greedy, exactly n new tokens, timed per token → (t0, token times)."""
    import torch

    times: list[float] = []

    class Clock:  # the least a raw user would do: a streamer that timestamps tokens
        first = True

        def put(self, value):
            if self.first:  # the first put is the prompt
                self.first = False
                return
            times.append(time.perf_counter())

        def end(self):
            pass

    def run() -> float:
        x = torch.tensor([ids])
        t0 = time.perf_counter()
        with torch.inference_mode():
            m.engine.model.generate(
                input_ids=x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                streamer=Clock(),
                pad_token_id=m.engine.tokenizer.eos_token_id,
            )
        return t0

    # On the kit's torch thread, like the kit's own generate: torch work from a second thread would
    # give OpenMP a second thread team and slow both sides (issue 11), which is not the kit's
    # overhead.
    return llamalab.on_torch_thread(run), times


def alternating(runs: int, first, second) -> None:
    """`runs` pairs: first-second, second-first, ..."""
    for i in range(runs):
        for step in (first, second) if i % 2 == 0 else (second, first):
            step()
