"""Notebook 01's exercises: the KV cache of 70B, decode speed predicted from bytes, a model for a
team's GPU, what a long context does to speed, Mixtral's memory and speed, and open or closed for
a hospital (the checklist's answers and the cost model)."""

from __future__ import annotations

from ...catalog import card, gpu
from ...plan.estimator import estimate
from ...plan.open_or_closed import open_or_closed
from ...plan.speed import roofline
from ..workbook import change, compute, decide, predict

GB = 1e9
GPUS = ("rtx-4090", "l4", "a100-80gb")
CONTEXT = 32768
MIN_SPEED = 20.0  # tokens/s for one user: faster than anyone reads


def kv_70b_32k(**_) -> float:
    return estimate("llama-3.1-70b", "bf16", context=32768).breakdown["kv_cache"] / GB


MOE = "mixtral-8x7b"
MOE_SCHEME = "q4_k_m"
MOE_GPU = "rtx-4090"


def moe_weights_gb(**_) -> float:
    """Mixtral 8x7B's Q4_K_M weights in GB: every expert stays in memory."""
    return estimate(MOE, MOE_SCHEME, context=4096, device="cuda").breakdown["weights"] / GB


def moe_tokens_per_s(**_) -> float:
    """Its decode ceiling on an RTX 4090's bandwidth at 4K context: a token reads 2 of 8 experts."""
    return roofline(MOE, MOE_SCHEME, MOE_GPU, context=4096)["tokens_per_s_per_sequence"]


def team_choice(choice) -> tuple[bool, str]:
    """(model, scheme, gpu): at least 8B parameters, 32K context on one GPU of GPUS, ≥ 20 tok/s."""
    if not isinstance(choice, (tuple, list)) or len(choice) != 3:
        return False, "answer a tuple of three names: (model, scheme, gpu)"
    model, scheme_name, gpu_name = choice
    if gpu_name not in GPUS:
        return False, f"the team can buy one of {', '.join(GPUS)}, not {gpu_name!r}"
    params = card(model).params
    e = estimate(model, scheme_name, context=CONTEXT, device="cuda")
    speed = roofline(model, scheme_name, gpu_name, context=CONTEXT)["tokens_per_s_per_sequence"]
    numbers = (
        f"{params / 1e9:.1f}B parameters; needs {e.total_bytes / GB:.1f} GB at 32K, "
        f"the {gpu_name} holds {gpu(gpu_name).memory_bytes / GB:.1f} GB; "
        f"roofline {speed:.0f} tokens/s"
    )
    ok = params >= 7.5e9 and e.fits(gpu_name) and speed >= MIN_SPEED
    return ok, numbers


# Exercise 7's scenario, as notebook 01 states it: the answers its facts give to the checklist.
HOSPITAL = {
    "data_in_house": "yes",  # the hospital's rules forbid sending patient notes outside its network
    "offline": "no",  # the wards are online
    "customization": "prompt",  # a system prompt with the letter template is enough
    "independence": "no",  # no policy on vendors
    "frontier_capability": "no",  # a doctor checks every draft; no frontier model needed
    "run_servers": "yes",  # its IT team runs servers
    "tokens_per_month": 3e8,  # about 300 million tokens a month
}
SAYS = {  # where the notebook's scenario answers each question (a hint, not the value)
    "data_in_house": "what the hospital's rules say about patient notes",
    "offline": "whether the wards are online",
    "customization": "what is enough to get the letter template right",
    "independence": "its policy on vendors",
    "frontier_capability": "who checks the drafts, and what model they need",
    "run_servers": "its IT team",
    "tokens_per_month": "how many tokens a month it expects",
}


def hospital_choice(answer) -> tuple[bool, str]:
    """("open" or "closed", {question id: answer}): the answers must be the scenario's, and the
    choice one the checklist and the cost model accept for them."""
    if not isinstance(answer, (tuple, list)) or len(answer) != 2 or not isinstance(answer[1], dict):
        return False, 'answer a pair: ("open" or "closed", {question id: your answer, ...})'
    choice, answers = answer
    rec = open_or_closed(answers)  # unknown ids or answers raise, with the ones it takes
    off = [q for q, want in HOSPITAL.items() if not _same(answers.get(q), want)]
    if off:
        return False, "these answers do not match the scenario: " + "; ".join(
            f"{q} (read {SAYS[q]})" for q in off
        )
    reasons = "; ".join(
        f"{r.question} = {r.answer} → {r.points}"
        for r in rec.reasons
        if r.points not in ("neutral", "unknown") or r.question == "tokens_per_month"
    )
    cost = rec.reason("tokens_per_month").why
    return choice in rec.acceptable, f"the checklist says {rec.choice} ({reasons}); {cost}"


def _same(given, want) -> bool:
    if isinstance(want, float):
        return isinstance(given, (int, float)) and abs(given - want) <= 0.2 * want
    return isinstance(given, (str, bool)) and str(given).strip().lower() == want


EXERCISES = {
    1: predict(
        lambda **_: 3.6,  # bytes per token ≈ 0.98 GB vs 0.27 GB (both 16-bit): speed ∝ 1 / bytes
        within=3.0,
        unit="×",
        timing=True,
        why="if bandwidth sets the speed, the ratio is the ratio of bytes read per token "
        "(0.98 / 0.27 ≈ 3.6). A 135M model on 2 cores is slowed by per-token overhead too, which "
        "narrows the gap; a burst of other work during one run widens or narrows it further.",
    ),
    2: compute(
        kv_70b_32k,
        lambda **_: 2 * 80 * 8 * 128 * 2 * 32768 / GB,
        rel=0.01,
        why="2 · layers · kv_heads · head_dim · context · 2 bytes: 10.7 GB, 2.5× the 8B model's "
        "(80 layers instead of 32, the same 8 KV heads)",
        hint="the formula of section 3, with 70B's 80 layers.",
    ),
    3: decide(
        team_choice,
        lambda **_: ("llama-3.1-8b", "int8", "l4"),
        need="a model of at least 8B parameters, 32K context, one GPU of "
        f"{', '.join(GPUS)}, ≥ {MIN_SPEED:.0f} tokens/s for one user",
        hint="answer a tuple (model, scheme, gpu); `llamalab.estimate(...).fits(gpu)` and "
        "`llamalab.roofline(model, scheme, gpu, context=32768)` give the two numbers to beat.",
    ),
    4: change(
        lambda **_: "down",
        why="each new token reads the whole KV cache as well as the weights: at 32K the 8B model's "
        "cache (4.3 GB in bf16) is almost as large as its Q4_K_M weights (4.9 GB), so a full "
        "context nearly halves the speed.",
    ),
    5: compute(
        moe_weights_gb,
        moe_weights_gb,
        rel=0.03,
        why="46.7B parameters × 4.89 bits ÷ 8 = 28.5 GB: all 8 experts must be resident, because "
        "the router picks 2 of them per token per layer and any token may pick any — more than "
        "an RTX 4090's 24 GB, although only 12.9B parameters work per token",
        hint="memory holds every expert, not just those a token uses: count "
        "`llamalab.card('mixtral-8x7b').params` at Q4_K_M's bits per weight "
        "(`llamalab.scheme('q4_k_m').bits_per_weight()`), ÷ 8 for bytes.",
    ),
    6: compute(
        moe_tokens_per_s,
        moe_tokens_per_s,
        rel=0.1,
        why="a token reads only its 2 experts (plus attention and embeddings): 12.9B active "
        "parameters, 7.9 GB at Q4_K_M, and 0.5 GB of KV cache at 4K; 1008 GB/s ÷ 8.4 GB ≈ 120 "
        "tokens/s — a dense model of the same 46.7B would read 29 GB per token, 3.5× slower",
        hint="decode reads the weights a token uses, once per token: bytes per token come from "
        "`active_params`, not `params`, plus the KV cache; tokens/s ≤ bandwidth ÷ bytes "
        "(`llamalab.gpu('rtx-4090').bandwidth_bytes_s`).",
    ),
    7: decide(
        hospital_choice,
        lambda **_: ("open", dict(HOSPITAL)),
        need="the hospital's answers to the checklist, and a choice they and the cost model allow",
        hint="answer every question of `llamalab.checklist()` from the scenario's sentences, then "
        "run `llamalab.open_or_closed(your_answers)` and read which reason decides: a need a "
        "closed API cannot meet comes before the cost line.",
    ),
}
