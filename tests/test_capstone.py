"""The capstone's checkers (llamalab/course/solutions/capstone.py), without a model: each accepts
its answer key and refuses a wrong answer with a message naming the number that fails; the
notebook's brief states the same numbers the checkers use."""

import json
import re
from pathlib import Path

import pytest

from llamalab.catalog.prices import prices
from llamalab.course import exercises
from llamalab.course.solutions import capstone as C

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_capstone.ipynb"
GOOD_GGUF = {"kl_mean": 0.065, "top1_agreement": 0.85, "tokens": 255}
BAD_GGUF = {"kl_mean": 0.31, "top1_agreement": 0.62, "tokens": 255}
CHEAP_PLAN = ("llama-3.1-8b", "awq-4bit", "a100-80gb")
DEAR_PLAN = ("llama-3.1-8b", "bf16", "h100-80gb")  # meets Stage 1, over the budget


@pytest.fixture
def ex(monkeypatch):
    monkeypatch.delenv("LLAMALAB_SOLUTIONS", raising=False)  # a learner: no answers filled in
    return exercises("06")


def test_stage_1_accepts_the_key_and_names_what_a_plan_misses(ex):
    assert ex.check(1, C.PLAN_SOLUTION), ex.results[1].message
    small = ex.check(1, ("llama-3.2-3b", "awq-4bit", "a100-80gb"))
    assert not small and "3.2B parameters (need ≥ 7.5B)" in small.message
    cramped = ex.check(1, ("llama-3.1-8b", "bf16", "l4"))
    assert not cramped and re.search(
        r"room for [\d.]+ sequences of 8192 \(need ≥ 15\)", repr(cramped)
    )
    assert "✗" in repr(cramped)


def test_stage_1_speed_is_the_roofline_at_15_sequences():
    ok, numbers = C.sized(C.PLAN_SOLUTION)
    speed = float(re.search(r"([\d.]+) tokens/s per analyst", numbers).group(1))
    assert ok and speed >= C.MIN_TOKENS_PER_S
    big_slow = C.sized(("llama-3.1-70b", "awq-4bit", "h100-80gb"))  # 70B: too slow or too cramped
    assert not big_slow[0], big_slow[1]


def test_stage_2_ships_only_a_measured_file_under_the_bar(ex):
    assert ex.check(2, "q4_k_m", measured_gguf={"q4_k_m": GOOD_GGUF})
    bad = ex.check(2, "q4_k_m", measured_gguf={"q4_k_m": BAD_GGUF})
    assert not bad and "KL 0.310 nats/token (limit 0.1)" in bad.message
    unmeasured = ex.check(2, "q8_0", measured_gguf={"q4_k_m": GOOD_GGUF})
    assert not unmeasured and "'q8_0' was not measured here" in unmeasured.message
    assert C.shipped_solution(measured_gguf={"q8_0": BAD_GGUF, "q4_k_m": GOOD_GGUF}) == "q4_k_m"


def test_stage_3_the_loss_must_fall(ex):
    assert ex.check(3, "down", before=2.4, after=0.9)
    up = ex.check(3, "up", before=2.4, after=0.9)
    assert not up and "2.4 → 0.9" in up.message


def test_stage_5_prediction_is_judged_against_the_measured_throughput(ex):
    assert ex.check(4, 40.0, measured=30.0, alone=18.0)
    far = ex.check(4, 400.0, measured=30.0, alone=18.0)
    assert not far and "measured 30 tokens/s" in far.message and "13.3× above" in far.message


def test_stage_6_costs_the_learners_plan(ex):
    own = C.monthly(CHEAP_PLAN).cost("self-hosted", C.TOKENS_PER_MONTH)
    hour = hour_price("a100-80gb")
    assert own == pytest.approx(hour * 730)  # one replica of one A100 80GB, every hour of the month
    assert ex.check(5, own, plan=CHEAP_PLAN)
    wrong = ex.check(5, 2 * hour * 730, plan=CHEAP_PLAN)  # two GPUs' worth
    assert not wrong and "too high by about 2.0×" in wrong.message


def test_stage_6_the_brief_rules_out_the_api_whatever_it_costs(ex):
    api = ex.check(6, "api", plan=CHEAP_PLAN)
    assert not api and "the brief rules it out" in api.message
    assert "cheaper, but not allowed" in api.message  # the API *is* cheaper at this volume
    assert not ex.check(6, "hosted", plan=CHEAP_PLAN)
    assert ex.check(6, "self-hosted", plan=CHEAP_PLAN)
    dear = ex.check(6, "self-hosted", plan=DEAR_PLAN)
    bill = f"${hour_price('h100-80gb') * 730:,.0f}"
    assert bill != "$0" and hour_price("h100-80gb") * 730 > C.BUDGET_USD  # the premise of this case
    assert not dear and "over the budget of $2,000" in dear.message and bill in dear.message


def hour_price(gpu: str) -> float:
    return prices()[1][gpu].usd_per_hour


def test_stage_6_waits_for_stage_1_without_counting_a_wrong_try(ex):
    r = ex.check(6, "self-hosted", plan=...)
    assert not r.answered and "answer exercise 1 first" in r.message
    assert ex.wrong.get(6, 0) == 0


def test_the_key_passes_every_check(monkeypatch):
    monkeypatch.setenv("LLAMALAB_SOLUTIONS", "1")
    book = exercises("06")
    given = {
        1: {},
        2: {"measured_gguf": {"q4_k_m": GOOD_GGUF}},
        3: {"before": 2.4, "after": 0.9},
        4: {"measured": 30.0, "alone": 18.0},
        5: {"plan": ...},
        6: {"plan": ...},
    }
    for n, kw in given.items():
        assert book.check(n, ..., **kw), book.results[n].message
    assert book.done()


def test_the_notebooks_brief_states_the_checkers_numbers():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    ns: dict = {}
    for name, expr in re.findall(r"^([A-Z_]+) = (.+?)\s*(?:#.*)?$", code, flags=re.M):
        try:
            ns[name] = eval(
                expr, {}, ns
            )  # the brief's constants, in the order the notebook sets them
        except (NameError, SyntaxError, TypeError):
            pass  # a parameter or a line that is not one of the brief's numbers
    for name in (
        "ANALYSTS",
        "CONTEXT",
        "MIN_PARAMS",
        "MIN_TOKENS_PER_S",
        "EFFICIENCY",
        "MAX_GPUS",
        "BUDGET_USD",
        "TOKENS_PER_MONTH",
    ):
        assert ns[name] == getattr(C, name), name
    assert ns["INPUT_SHARE"] == pytest.approx(C.INPUT_SHARE)
