"""The exercises' checker: right within tolerance, wrong with the hint, unanswered said so."""

from llamalab.course import check


def test_numbers_within_tolerance_are_right():
    assert check(10.5, 10.0, rel=0.1)
    assert not check(12.0, 10.0, rel=0.1)
    assert check(3, 3)


def test_wrong_answer_says_expected_and_why():
    r = check("awq", "gptq", why="GPTQ needs calibration")
    assert not r and "expected 'gptq'" in repr(r) and "GPTQ needs calibration" in repr(r)


def test_placeholder_is_not_answered():
    assert "not answered" in repr(check(..., 1.0))
    assert not check(True, 1)  # a bool is not a number
