"""Notebook 03's exercise 5 (a reply format of the learner's own): the data is checked before
anything trains, with a message naming what to fix; the run is judged on compliance before → after;
the answer key's data passes its own check and its pattern scores what the notebook scores."""

import copy

import pytest

from llamalab import scorers
from llamalab.course import exercises
from llamalab.course.own_format import problems
from llamalab.course.solutions.lora import OWN_FORMAT

HELDOUT = [
    "What is the capital of Peru?",
    "What is 9 plus 4?",
    "What colour is snow?",
    "Who wrote?",
]


def data():
    return copy.deepcopy(OWN_FORMAT["examples"]), OWN_FORMAT["pattern"]


def test_the_answer_keys_data_is_ready_and_its_pattern_scores_like_the_notebook():
    examples, pattern = data()
    assert problems(examples, pattern, HELDOUT) == []
    regex = scorers.Regex(pattern)
    assert all(regex(e["response"], None) for e in examples)
    assert not regex("The capital of Peru is Lima.", None)
    assert not regex('{"answer": "Lima"} and more', None)


@pytest.mark.parametrize(
    "spoil, says",
    [
        (lambda ex, p, h: (ex[:19], p, h), "19 examples: write exactly 20"),
        (lambda ex, p, h: ([*ex, ex[0]], p, h), "21 examples"),
        (lambda ex, p, h: ({"rows": ex}, p, h), "my_examples is a dict"),
        (lambda ex, p, h: ([*ex[:19], "Paris"], p, h), "example 19 is a str"),
        (lambda ex, p, h: ([*ex[:19], {"prompt": "Hi?"}], p, h), "example 19 has no 'response'"),
        (
            lambda ex, p, h: ([*ex[:19], {"question": "Hi?", "response": '{"answer": "x"}'}], p, h),
            "has keys ['question']",
        ),
        (
            lambda ex, p, h: ([*ex[:19], {"prompt": "  ", "response": '{"answer": "x"}'}], p, h),
            "example 19's prompt is empty",
        ),
        (
            lambda ex, p, h: (
                [*ex[:19], {**ex[19], "response": '{"answer": "' + "x" * 300 + '"}'}],
                p,
                h,
            ),
            "keep replies under 200",
        ),
        (
            lambda ex, p, h: (
                [*ex[:19], {**ex[19], "prompt": "what is  the CAPITAL of france?"}],
                p,
                h,
            ),
            "example 19 repeats example 0's prompt",
        ),
        (
            lambda ex, p, h: (ex, p, [*h, "What is the capital of France?"]),
            "'What is the capital of France?' is also a training prompt",
        ),
        (lambda ex, p, h: (ex, p, h[:2]), "2 held-out prompts: measure on at least 4"),
        (lambda ex, p, h: (ex, p, "What?"), "my_heldout is not a list"),
        (
            lambda ex, p, h: ([*ex[:19], {**ex[19], "response": "ran"}], p, h),
            "example 19's response 'ran' does not match my_pattern",
        ),
        (lambda ex, p, h: (ex, r".+", h), "my_pattern also matches plain prose"),
        (lambda ex, p, h: (ex, r"^{(answer", h), "my_pattern is not a regular expression"),
        (lambda ex, p, h: (ex, None, h), "my_pattern is not a regular expression"),
    ],
)
def test_bad_data_is_refused_with_what_to_fix(spoil, says):
    found = problems(*spoil(*data(), HELDOUT))
    assert any(says in line for line in found), found


def test_the_check_says_ready_then_judges_compliance(learner):
    ex, (examples, pattern) = exercises("03"), data()
    ready = ex.check(5, examples, pattern=pattern, heldout=HELDOUT)
    assert (
        ready
        and "ready to train" in repr(ready)
        and "Exercise 5 · change and observe" in repr(ready)
    )
    rose = ex.check(5, examples, pattern=pattern, heldout=HELDOUT, before=0.0, after=0.75)
    assert rose and "compliance 0 % → 75 %" in repr(rose)
    flat = ex.check(5, examples, pattern=pattern, heldout=HELDOUT, before=0.0, after=0.0)
    assert not flat and "did not teach your format" in repr(flat)
    fell = ex.check(5, examples, pattern=pattern, heldout=HELDOUT, before=0.5, after=0.25)
    assert not fell and "50 % → 25 %" in repr(fell)
    assert ex.check(5, examples, pattern=pattern, heldout=HELDOUT, before=1.0, after=1.0)


def test_bad_data_fails_the_check_even_when_compliance_rose(learner):
    examples, pattern = data()
    r = exercises("03").check(5, examples[:5], pattern=pattern, heldout=HELDOUT, before=0, after=1)
    assert not r and "not ready to train" in repr(r) and "5 examples" in repr(r)


def test_answer_returns_the_learners_own_data_and_the_key_only_under_the_switch(
    learner, monkeypatch
):
    ex, mine = exercises("03"), [{"prompt": "a", "response": "b"}]
    assert ex.answer(5, mine) is mine
    assert ex.answer(5, ...) is ...
    assert not ex.check(5, ..., pattern=..., heldout=HELDOUT).answered
    monkeypatch.setenv("LLAMALAB_SOLUTIONS", "1")
    assert ex.answer(5, mine) is mine  # a learner's own answer is used, switch or not
    assert ex.answer(5, ...) == OWN_FORMAT["examples"]
    assert ex.answer(5, ..., part="pattern") == OWN_FORMAT["pattern"]
    assert ex.check(5, ..., pattern=OWN_FORMAT["pattern"], heldout=HELDOUT, before=0, after=0.5)
