"""Notebook 06's exercises (the capstone): one team's brief taken through sizing, a shipped GGUF, a
few LoRA steps, a served pilot, its load test and the monthly bill. Each checker answers with the
kit's numbers (estimator, roofline, deployment plan, cost model) or with what the notebook measured.

The brief's facts are the constants below; the notebook states the same numbers in its own cell
(it does not import the answer key), and tests/test_capstone.py holds the two equal.
"""

from __future__ import annotations

from ...catalog import card
from ...plan.cost import API, HOSTED, SELF, cost_at_scale
from ...plan.deployment import deployment_plan
from ...plan.speed import roofline
from ..exercise import Checked, unanswered
from ..workbook import Exercise, change, compute, decide, predict, solutions_on

ANALYSTS = 15  # all of them may ask at once at month's end
CONTEXT = 8192  # a contract excerpt + the question + the answer
MIN_PARAMS = 7.5e9  # the team's pilot found smaller models too weak on their documents
MIN_TOKENS_PER_S = 20.0  # per analyst, with all of them decoding at once: faster than they read
EFFICIENCY = 0.5  # share of the bandwidth roofline a real server reaches (the cost model's default)
MAX_GPUS = 1  # IT hosts one GPU for this team
BUDGET_USD = 2000.0  # per month, for the GPU (rented on demand)
REQUESTS_PER_DAY = 40  # per analyst
WORKDAYS = 21  # per month
PROMPT_TOKENS, REPLY_TOKENS = 3500, 500  # per request
TOKENS_PER_MONTH = ANALYSTS * REQUESTS_PER_DAY * WORKDAYS * (PROMPT_TOKENS + REPLY_TOKENS)
INPUT_SHARE = PROMPT_TOKENS / (PROMPT_TOKENS + REPLY_TOKENS)
API_NAME = "gpt-4o"  # the closed API the team's manager asks about
PRIVATE = "internal documents must not leave the company"
GGUF_SCHEMES = ("q8_0", "q4_k_m")  # the llama.cpp schemes the pilot may ship
MAX_KL = 0.1  # nats/token against the F16 GGUF: the pilot's quality bar for the shipped file
MIN_TOP1 = 0.8  # share of next tokens the shipped file picks as the F16 file does
OPTIONS = (SELF, API, HOSTED)

PLAN_SOLUTION = ("llama-3.1-8b", "awq-4bit", "a100-80gb")


def the_plan(plan) -> tuple[str, str, str]:
    """The learner's Stage 1 answer (model, scheme, gpu); under the solutions switch a placeholder
    is the answer key's plan, as `ex.check(1, ...)` judged it."""
    if unanswered(plan) and solutions_on():
        plan = PLAN_SOLUTION
    if unanswered(plan):
        raise ValueError("answer exercise 1 first: this stage costs *your* plan")
    if not isinstance(plan, (tuple, list)) or len(plan) != 3:
        raise ValueError("exercise 1's answer is a tuple of three names: (model, scheme, gpu)")
    return tuple(plan)


# ---- Stage 1 · size it -------------------------------------------------------------------------


def sized(choice) -> tuple[bool, str]:
    """(model, scheme, gpu) for the real deployment: ≥ 7.5B parameters, on one GPU, 15 sequences of
    8192 tokens at once (vLLM's plan), ≥ 20 tokens/s per analyst (roofline × efficiency)."""
    model, scheme, gpu = the_plan(choice)
    params = card(model).params
    p = deployment_plan(model, scheme, gpu, context=CONTEXT)
    speed = (
        EFFICIENCY * roofline(model, scheme, gpu, CONTEXT, ANALYSTS)["tokens_per_s_per_sequence"]
    )
    numbers = (
        f"{params / 1e9:.1f}B parameters (need ≥ {MIN_PARAMS / 1e9:.1f}B); "
        f"{p.gpus} × {p.gpu} (need ≤ {MAX_GPUS}); "
        f"room for {p.max_concurrency:.1f} sequences of {CONTEXT} (need ≥ {ANALYSTS}); "
        f"{speed:.1f} tokens/s per analyst with {ANALYSTS} decoding = {EFFICIENCY:g} × the "
        f"roofline (need ≥ {MIN_TOKENS_PER_S:g})"
    )
    ok = (
        params >= MIN_PARAMS
        and p.gpus <= MAX_GPUS
        and p.max_concurrency >= ANALYSTS
        and speed >= MIN_TOKENS_PER_S
    )
    return ok, numbers


# ---- Stage 2 · pick and quantize ---------------------------------------------------------------


def passes(check: dict) -> bool:
    return check["kl_mean"] <= MAX_KL and check["top1_agreement"] >= MIN_TOP1


def shipped(choice, *, measured_gguf: dict, **_) -> tuple[bool, str]:
    """The GGUF scheme to ship for the pilot: one of GGUF_SCHEMES, measured in this notebook, with
    KL ≤ MAX_KL and top-1 ≥ MIN_TOP1 against the F16 file. `measured_gguf`: scheme ->
    ExportCheck.to_dict() of what the notebook exported."""
    if choice not in GGUF_SCHEMES:
        return False, f"the pilot ships one of {', '.join(map(repr, GGUF_SCHEMES))}"
    if choice not in measured_gguf:
        done = ", ".join(map(repr, measured_gguf)) or "none"
        return False, (
            f"{choice!r} was not measured here (measured: {done}): set GGUF = {choice!r} in the "
            "parameters cell and run Stage 2 again — never ship a file you have not checked"
        )
    c = measured_gguf[choice]
    numbers = (
        f"measured KL {c['kl_mean']:.3f} nats/token (limit {MAX_KL:g}), top-1 agreement "
        f"{c['top1_agreement']:.2f} (at least {MIN_TOP1:g}) against the F16 file, "
        f"over {c['tokens']} tokens"
    )
    return passes(c), numbers


def shipped_solution(*, measured_gguf: dict, **_) -> str:
    good = [s for s, c in measured_gguf.items() if s in GGUF_SCHEMES and passes(c)]
    return good[0] if good else GGUF_SCHEMES[0]


# ---- Stage 6 · cost it -------------------------------------------------------------------------


def monthly(plan) -> object:
    """The cost model for the plan at the brief's volume, context and concurrency."""
    model, scheme, gpu = the_plan(plan)
    return cost_at_scale(
        model,
        scheme,
        gpu,
        API_NAME,
        tokens_per_month=[TOKENS_PER_MONTH],
        context=CONTEXT,
        batch=ANALYSTS,
        input_share=INPUT_SHARE,
    )


def self_hosted_usd(*, plan=..., **_) -> float:
    return monthly(plan).cost(SELF, TOKENS_PER_MONTH)


def how_to_serve(choice, *, plan=..., **_) -> tuple[bool, str]:
    """self-hosted, api or hosted: the privacy line rules out both per-token options whatever they
    cost; self-hosting must fit the monthly budget."""
    if choice not in OPTIONS:
        return False, f"answer one of {', '.join(map(repr, OPTIONS))}"
    r = monthly(plan)
    own = r.cost(SELF, TOKENS_PER_MONTH)
    bills = f"self-hosted ${own:,.0f}, {r.api} ${r.cost(API, TOKENS_PER_MONTH):,.0f}"
    if r.hosted is not None:
        bills += f", {r.hosted} ${r.cost(HOSTED, TOKENS_PER_MONTH):,.0f}"
    bills += f" a month at {TOKENS_PER_MONTH / 1e6:.1f} M tokens"
    if choice in (API, HOSTED):
        cheaper = r.cost(choice, TOKENS_PER_MONTH) < own
        so = "cheaper, but not allowed" if cheaper else "not cheaper either"
        return False, (
            f"the brief rules it out whatever it costs ({PRIVATE}: every prompt would go to a "
            f"provider) — {bills}: {so}"
        )
    ok = own <= BUDGET_USD
    verdict = "within" if ok else "over"
    return ok, (
        f"{bills}; {r.replicas[0]} replica of {r.gpus_per_replica} × {r.gpu} at "
        f"${r.gpu_usd_per_hour:.2f}/h is {verdict} the budget of ${BUDGET_USD:,.0f}"
        + ("" if ok else ": go back to Stage 1 and pick a cheaper GPU that still meets the brief")
    )


def after_stage_1(ex: Exercise) -> Exercise:
    """An exercise that costs the learner's Stage 1 plan: until exercise 1 is answered it says so
    (not answered, no wrong try counted) instead of raising."""

    def judge(answer, reveal, **given):
        try:
            the_plan(given.get("plan", ...))
        except ValueError as e:
            if not unanswered(answer):
                return Checked(False, f"… {e}.", answered=False)
        return ex.judge(answer, reveal, **given)

    return Exercise(ex.kind, judge, ex.solution, ex.timing, ex.reveals)


EXERCISES = {
    1: decide(
        sized,
        lambda **_: PLAN_SOLUTION,
        need=f"a model of ≥ {MIN_PARAMS / 1e9:.1f}B parameters on {MAX_GPUS} GPU, {ANALYSTS} "
        f"sequences of {CONTEXT} tokens at once, ≥ {MIN_TOKENS_PER_S:g} tokens/s per analyst",
        hint="answer (model, scheme, gpu). `llamalab.deployment_plan(model, scheme, gpu, "
        "context=8192)` gives the GPUs and `max_concurrency`; `llamalab.roofline(model, scheme, "
        "gpu, 8192, 15)['tokens_per_s_per_sequence']` × 0.5 the speed per analyst. 15 KV caches "
        "of 8K are most of the memory: weights that take less room leave more for them.",
    ),
    2: decide(
        shipped,
        shipped_solution,
        need=f"a llama.cpp scheme measured here with KL ≤ {MAX_KL:g} nats/token and top-1 ≥ "
        f"{MIN_TOP1:g} against the F16 file",
        hint="read `exported.check`: the KL and top-1 of the file you exported.",
    ),
    3: change(
        lambda **_: "down",
        why="each step moves the adapter's weights against the gradient of the loss on that batch, "
        "so the training loss falls from the first steps to the last — quickly here, because the "
        "house format is the same two lines every time. A falling loss over a few steps says the "
        "format is being learned, not that the answers got better: the held-out score says that.",
    ),
    4: predict(
        lambda *, alone, **_: 1.5 * alone,
        within=2.5,
        unit=" tokens/s",
        timing=True,
        why="the server decodes the slots' next tokens in one batch, reading the weights once for "
        "all of them, so 4 analysts together get more tokens/s than one alone — but far less than "
        "4×, because each step also does 4× the arithmetic on one busy CPU thread, and 4 prompts "
        "wait for each other's prefill (notebook 04 measured 1.6–2.7× from 1 to 4–8 users; a busy "
        "machine gets less). Start from one reply's tokens ÷ its whole time (`alone`), not its "
        "decode speed: with short answers the time to the first token is much of each request, "
        "and a load test counts it. On a GPU, where decoding waits on memory, the gain is much "
        "larger.",
    ),
    5: after_stage_1(
        compute(
            self_hosted_usd,
            self_hosted_usd,
            rel=0.05,
            why="replicas × GPUs per replica × $/GPU-hour × 730 hours: one replica holds the "
            "brief's volume, and it is paid every hour, busy or not",
            hint="`llamalab.cost_at_scale(model, scheme, gpu, 'gpt-4o', "
            "tokens_per_month=[TOKENS], context=8192, batch=15, input_share=...)` and its "
            "`.cost('self-hosted', TOKENS)`; or by hand: GPUs × the price list's $/hour × 730.",
        )
    ),
    6: after_stage_1(
        decide(
            how_to_serve,
            lambda **_: SELF,
            need=f"the brief's volume under its privacy line ({PRIVATE}) and a budget of "
            f"${BUDGET_USD:,.0f} a month",
            hint="answer 'self-hosted', 'api' or 'hosted'. Read the brief before the price list.",
        )
    ),
}
