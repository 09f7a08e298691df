"""The exercises: a wrong answer gets how far off and a hint (never the value, until three tries or
reveal=True), decide-exercises accept every choice that meets the need, and the notebooks store
placeholders whose answers only the solutions switch fills in."""

import json
import re
from pathlib import Path

import pytest

from llamalab.course import Exercise, ExercisesFailed, Workbook, check, exercises
from llamalab.course.exercise import Checked
from llamalab.course.solutions import BY_NUMBER

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_numbers_within_tolerance_are_right():
    assert check(10.5, 10.0, rel=0.1)
    assert not check(12.0, 10.0, rel=0.1)
    assert check(3, 3)
    assert not check(True, 1)  # a bool is not a number


def test_a_wrong_answer_says_how_far_off_and_the_hint_but_not_the_value():
    r = check(12.0, 4.0, hint="count K and V once each", why="it is 4")
    assert not r and "too high by about 3.0×" in repr(r) and "count K and V" in repr(r)
    assert "4.0" not in repr(r) and "it is 4" not in repr(r)
    assert "too low by about 20 %" in repr(check(8.0, 10.0))
    assert "not this one" in repr(check("awq", "gptq")) and "gptq" not in repr(check("awq", "gptq"))


def test_unit_slips_are_named():
    assert "MB vs GB" in repr(check(4295.0, 4.295))
    assert "GiB vs GB" in repr(check(4.0, 4.294967296))
    assert "bits vs bytes" in repr(check(8.0, 1.0))


def test_reveal_shows_the_value_and_why():
    r = check(12.0, 4.0, why="a quarter of the 128K figure", reveal=True)
    assert not r and "4.0" in repr(r) and "a quarter" in repr(r)


def test_the_placeholder_is_not_answered():
    r = check(..., 1.0)
    assert not r and not r.answered and "not answered" in repr(r)


def test_three_wrong_tries_then_the_answer(learner):
    ex = exercises("00")
    first, second = ex.check(2, 17.0), ex.check(2, 16.0)
    assert "4.29" not in repr(first) + repr(second) and "2 more wrong tries" in repr(first)
    third = ex.check(2, 1.0)
    assert not third and "expected answer is 4.29" in repr(third)
    assert ex.check(2, 4.3) and "a quarter of the 128K figure" in repr(ex.check(2, 4.3))
    assert "4.29" in repr(exercises("00").check(2, 1.0, reveal=True))


def test_a_decide_exercise_accepts_every_choice_that_meets_the_need(learner):
    ex = exercises("00")
    assert ex.check(3, "fp8") and ex.check(3, "int8")  # both 8-bit, both fit one H100
    too_big, fewer_bits = ex.check(3, "bf16"), ex.check(3, "gptq-4bit")
    assert not too_big and "146.2 GB" in repr(too_big) and "fp8" not in repr(too_big)
    assert not fewer_bits and "more bits (8) fits too" in repr(fewer_bits)
    plan = exercises("04")
    assert plan.check(3, ("awq-4bit", "h100-80gb")) and plan.check(3, ("bf16", "h200"))
    assert not plan.check(3, ("bf16", "h100-80gb"))  # two H100s: room for ~3 sequences, not 10
    lora = exercises("03")
    assert lora.check(4, "lora") and lora.check(4, "qlora") and not lora.check(4, "full")
    assert "GB to spare" in repr(lora.check(4, "lora"))
    assert "GB short" in repr(lora.check(4, "full"))


def test_a_bad_choice_gets_the_kits_message_not_an_exception(learner):
    r = exercises("04").check(3, ("int8", "h100-80gb"))
    assert not r and r.answered and "cannot run on vLLM" in repr(r)
    assert "answer a tuple" in repr(exercises("04").check(3, "awq"))
    assert "Unknown scheme" in repr(exercises("00").check(3, "fp7"))


def test_a_prediction_is_compared_with_the_measurement_and_the_gap_explained(learner):
    ex = exercises("00")
    far, close = ex.check(1, 0.27, measured=0.70), ex.check(1, 0.6, measured=0.70)
    assert not far and "2.6× below the measurement" in repr(far) and "Why:" in repr(far)
    assert close and "17 % below" in repr(close)
    assert "a number is expected" in repr(ex.check(1, "half a GB", measured=0.7))


def test_change_and_observe_checks_the_direction(learner):
    ex = exercises("00")
    assert ex.check(4, "same", before=17.18e9, after=17.18e9)
    wrong = ex.check(4, "down", before=17.18e9, after=17.18e9)
    assert not wrong and "it stayed the same, you predicted 'down'" in repr(wrong)
    assert "answer one of" in repr(ex.check(4, "lower", before=1.0, after=2.0))


def test_the_switch_answers_a_placeholder_from_the_solutions_file(solutions):
    ex = exercises("00")
    r = ex.check(2, ...)
    assert r and "answer from llamalab/course/solutions/quickstart.py" in repr(r)
    assert not ex.check(2, 1.0)  # a learner's own answer is still judged, switch or not


def test_done_tallies_for_a_learner_and_fails_ci_on_a_bad_solution(learner, monkeypatch):
    bad = Workbook(
        "notebook 99",
        "the test",
        {
            1: Exercise("compute", lambda a, reveal: check(a, 2), lambda: 3),
            2: Exercise("compute", lambda a, reveal: check(a, 2), lambda: 2),
        },
    )
    bad.check(1, ...)
    tally = bad.done()  # a learner: a tally, never an exception
    assert not tally and "0 of 2" in repr(tally) and "not answered yet: 1, 2" in repr(tally)
    monkeypatch.setenv("LLAMALAB_SOLUTIONS", "1")
    bad.check(1, ...)
    with pytest.raises(ExercisesFailed, match=r"not run \[2\], solutions not accepted \[1\]"):
        bad.done()


def test_a_skipped_exercise_says_why_and_is_neither_missing_nor_failed(solutions):
    ex = exercises("00")  # in a room: exercise 1 measures a local load the kernel never makes
    skipped = ex.skip(1, "the model's memory is the room server's")
    assert not skipped and not skipped.answered and "room server's" in repr(skipped)
    for n in (2, 3):
        ex.check(n, ...)
    with pytest.raises(ExercisesFailed, match=r"not run \[4\]"):  # a skip is no free pass
        ex.done()
    ex.check(4, ..., before=1.0, after=1.0)
    tally = ex.done()
    assert tally and "3 of 3 exercises right; skipped here: 1" in repr(tally)


def test_timing_exercises_are_shown_not_required(solutions):
    ex = exercises("04")
    ex.check(1, ..., measured=101.0)
    ex.check(2, "down", before=20.0, after=30.0)  # a busy machine may disagree with the solution
    ex.check(3, ...)
    assert not ex.results[2] and ex.done().right is False  # shown as wrong, not raised


def _code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("number", sorted(BY_NUMBER))
def test_each_notebook_stores_placeholders_and_checks_every_exercise(number):
    """No answer next to its question: every checked variable is assigned `...` and nothing else;
    every exercise of the answer key is checked in the notebook; the three kinds are there."""
    (path,) = NOTEBOOKS.glob(f"{number}_*.ipynb")
    code = _code(path)
    checked = dict(re.findall(r"ex\.check\((\d+), (\w+)", code))
    book = exercises(number)
    assert sorted(map(int, checked)) == sorted(book.items), checked
    for name in checked.values():
        assigned = re.findall(rf"^{name} = (.*?)\s*(#.*)?$", code, flags=re.M)
        assert [a for a, _ in assigned] == ["..."], (path.name, name, assigned)
    assert {"predict", "decide", "change"} <= {e.kind for e in book.items.values()}
    assert "check(answer" not in code and "from llamalab.course import check" not in code


@pytest.mark.parametrize("number", sorted(BY_NUMBER))
def test_a_learner_who_has_not_answered_sees_not_answered_and_no_error(learner, number):
    book = exercises(number)
    given = {"measured": 1.0, "before": 1.0, "after": 2.0, "table": None}
    for n in book.items:
        r = book.check(n, ..., **given)
        assert isinstance(r, Checked) and not r.answered and "not answered yet" in repr(r), n
    assert "not answered yet" in repr(book.done())


def test_solutions_ship_inside_the_package():
    import llamalab.course.solutions as pkg

    folder = Path(pkg.__file__).parent
    assert {f"{name}.py" for name in BY_NUMBER.values()} <= {p.name for p in folder.iterdir()}
