"""Notebook 04's exercises: the size of a k-quant file predicted, what concurrency does to
throughput, and a deployment for 70B sized by the plan."""

from __future__ import annotations

from ...plan.deployment import deployment_plan
from ...plan.estimator import estimate
from ..workbook import change, decide, predict

CONTEXT = 8192
USERS = 10  # sequences of 8192 tokens at once
MAX_GPUS = 2


def plan_for_70b(choice) -> tuple[bool, str]:
    """(scheme, gpu): Llama 3.1 70B holding 10 sequences of 8192 tokens on at most 2 GPUs."""
    if not isinstance(choice, (tuple, list)) or len(choice) != 2:
        return False, "answer a tuple of two names: (scheme, gpu)"
    p = deployment_plan("llama-3.1-70b", choice[0], choice[1], context=CONTEXT)
    numbers = (
        f"{p.gpus} × {p.gpu} (TP {p.tensor_parallel}), {p.per_gpu_bytes / 1e9:.1f} GB per GPU, "
        f"room for {p.max_concurrency:.1f} sequences of {CONTEXT}"
    )
    return p.gpus <= MAX_GPUS and p.max_concurrency >= USERS, numbers


EXERCISES = {
    1: predict(
        lambda **_: estimate("default", "q4_k_m").breakdown["weights"] / 1e6,
        within=1.15,
        unit=" MB",
        why="135M weights at ~4.5 bits would be ~76 MB, but k-quants pack 256 weights per block "
        "and this model's rows are 576 wide: llama.cpp stores most tensors in its fallback type "
        '(Q5_0), so the file is larger than a "4-bit" name promises. '
        "The estimator knows the rule (`llamalab.estimate('default', 'q4_k_m').notes`).",
    ),
    2: change(
        lambda **_: "up",
        timing=True,
        why="the server batches the slots' next tokens into one forward pass that reads the "
        "weights once for all of them, so the tokens per second of all users together rise, "
        "while each user's TTFT and TPOT rise too. On a busy machine the rise is smaller "
        "(and c8 can fall below c4).",
    ),
    3: decide(
        plan_for_70b,
        lambda **_: ("awq-4bit", "h100-80gb"),
        need=f"Llama 3.1 70B for {USERS} sequences of {CONTEXT} tokens at once, on at most "
        f"{MAX_GPUS} GPUs of one type",
        hint="answer (scheme, gpu); `llamalab.deployment_plan('llama-3.1-70b', scheme, gpu, "
        "context=8192)` prints the GPUs and the `max_concurrency` — and weights that take less "
        "room leave more for the KV cache.",
    ),
}
