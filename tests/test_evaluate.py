"""evaluate() on the learner's own data: the scorers (pure), the 95 % intervals, the data loaders
and their errors, then evaluate() and compare(evaluation=) against the fake engine (tests/fakes.py).
The real models (in-process, a GGUF scheme, an adapter, a served endpoint) are in
test_evaluate_models.py."""

import json
import math

import pandas as pd
import pytest
from fakes import ENDLESS, Loader

import llamalab
from llamalab import InvalidSetting, LlamalabError, compare, evaluate
from llamalab.measure.confidence import bootstrap, interval, wilson
from llamalab.measure.examples import examples
from llamalab.measure.scorers import (
    Contains,
    Exact,
    HouseAnswer,
    HouseFormat,
    Number,
    Regex,
    ValidJson,
    numbers,
    scorer,
)

CAPITALS = [
    {"prompt": "What is the capital of France?", "expected": "Paris"},
    {"prompt": "What is the capital of Italy?", "expected": "Rome"},
]

# ---------------------------------------------------------------- scorers


def test_exact_normalizes_whitespace_and_case_unless_asked():
    assert Exact()("  Paris\n", "paris") and Exact()("New   York", "new york")
    assert not Exact(case=True)("paris", "Paris") and Exact(case=True)(" Paris ", "Paris")
    assert not Exact()("Paris.", "Paris")  # punctuation is part of the answer


def test_contains_finds_the_expected_text_anywhere():
    assert Contains()("The capital of France is PARIS.", "paris")
    assert not Contains()("The capital is Lyon.", "Paris")
    assert not Contains(case=True)("paris", "Paris")


def test_regex_takes_a_pattern_or_each_rows_expected_as_the_pattern():
    assert Regex(r"\bParis\b")("It is Paris.", None) and not Regex(r"^Paris")("It is Paris", None)
    assert Regex()("answer: 42", r"\d+") and not Regex()("answer: forty", r"\d+")
    assert Regex(r"paris", ignore_case=True)("PARIS", None) and not Regex(r"paris")("PARIS", None)
    assert not Regex("x").needs_expected and Regex().needs_expected
    with pytest.raises(InvalidSetting, match="not a regular expression"):
        Regex("(unclosed")


def test_valid_json_parses_fenced_replies_and_checks_keys():
    assert ValidJson()('{"a": 1}', None) and ValidJson()("[1, 2]", None)
    assert ValidJson()('```json\n{"a": 1}\n```', None)
    assert not ValidJson()("{'a': 1}", None) and not ValidJson()("Sure! {}", None)
    assert ValidJson(keys=("a", "b"))('{"a": 1, "b": 2}', None)
    assert not ValidJson(keys=("a", "b"))('{"a": 1}', None)
    assert not ValidJson(keys=("a",))("[1]", None)  # keys need an object


def test_number_reads_the_last_or_first_number_within_a_tolerance():
    assert numbers("−3 apples, 1,234.5 pears and 2e3") == [-3.0, 1234.5, 2000.0]
    assert Number()("2 + 2 = 4", "4") and not Number(which="first")("2 + 2 = 4", "4")
    assert Number()("It is 3.14159.", 3.14159) and not Number()("It is 3.14", 3.14159)
    assert Number(abs_tol=0.01)("It is 3.14", 3.14159) and Number(rel_tol=0.01)("99.5", 100)
    assert not Number()("no digits here", 4)
    with pytest.raises(ValueError, match="not one number"):
        Number().check("four")
    with pytest.raises(InvalidSetting):
        Number(abs_tol=-1)


def test_the_house_format_scorers_and_their_early_stop():
    good = "ANSWER: Paris\nTOPIC: geography"
    assert HouseFormat()(good, None) and not HouseFormat()("ANSWER: Paris\nTOPIC: cities", None)
    assert HouseAnswer()(good, "ANSWER: paris\nTOPIC: geography")
    assert not HouseAnswer()(good, "ANSWER: Rome\nTOPIC: geography")
    assert not HouseFormat().gives_up("ANS") and not HouseFormat().gives_up("ANSWER: Par")
    assert HouseFormat().gives_up("The answer") and HouseAnswer().gives_up("Sure")
    assert not Contains().gives_up("anything")


def test_scorers_by_name_function_or_object_and_unknown_names():
    assert isinstance(scorer("contains"), Contains) and scorer(Number(abs_tol=1)).abs_tol == 1

    def starts_right(reply, expected):
        return reply.startswith(expected)

    s = scorer(starts_right)
    assert s.name == "starts_right" and s("Paris!", "Paris")
    with pytest.raises(InvalidSetting, match="Did you mean contains"):
        scorer("contain")
    with pytest.raises(InvalidSetting, match="not a scorer"):
        scorer(3)


# ---------------------------------------------------------------- intervals


def test_wilson_matches_published_values_and_stays_inside_0_1():
    # Newcombe (1998), Table I: 0/10 → 0–0.2775, 5/10 → 0.2366–0.7634 (method 3, Wilson)
    none, half = wilson(0, 10), wilson(5, 10)
    assert (none.low, round(none.high, 4)) == (0.0, 0.2775)
    assert (round(half.low, 4), round(half.high, 4)) == (0.2366, 0.7634)
    assert wilson(10, 10).high == 1.0 and wilson(10, 10).low < 1.0  # 10/10 is not proof of 100 %


def test_the_interval_narrows_with_more_examples():
    assert wilson(50, 100).half_width < wilson(5, 10).half_width
    many = bootstrap([0.2, 0.9, 0.5, 0.7] * 25)
    few = bootstrap([0.2, 0.9, 0.5, 0.7])
    assert many.half_width < few.half_width and many.method == "bootstrap"


def test_bootstrap_for_fractional_scores_is_seeded_and_brackets_the_mean():
    scores = [0.1, 0.5, 0.5, 0.9, 1.0, 0.0, 0.25]
    a, b = interval(scores), interval(scores)
    assert a == b and a.method == "bootstrap"
    assert min(scores) <= a.low < a.mean < a.high <= max(scores)
    assert interval([1.0, 0.0, 1.0]).method == "wilson"
    assert (bootstrap([0.5]).low, bootstrap([0.5]).high) == (0.0, 1.0)  # one score: nothing known


# ---------------------------------------------------------------- data


def test_data_from_a_list_jsonl_csv_and_dataframe_are_the_same(tmp_path):
    jsonl = tmp_path / "capitals.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in CAPITALS) + "\n\n")
    csv = tmp_path / "capitals.csv"
    pd.DataFrame(CAPITALS).to_csv(csv, index=False)
    loaded = [examples(d) for d in (CAPITALS, jsonl, str(csv), pd.DataFrame(CAPITALS))]
    assert all(e.rows == loaded[0].rows for e in loaded)
    assert [e.source for e in loaded] == ["a list", "capitals.jsonl", "capitals.csv", "a DataFrame"]


def test_chat_prompts_and_conversations():
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    e = examples([{"prompt": chat, "expected": 4}]).rows[0]
    assert e.prompt == chat and e.expected == 4
    conv = examples([{"messages": [*chat, {"role": "assistant", "content": "4"}]}]).rows[0]
    assert conv.prompt == chat and conv.expected == "4"


def test_the_bundled_dataset_is_prompt_minus_the_last_reply():
    ex = examples("house-format-heldout")
    first = llamalab.conversations("house-format-heldout")[0]
    assert ex.rows[0].prompt == first[:-1] and ex.rows[0].expected == first[-1]["content"]
    assert ex.source == "house-format-heldout" and len(ex.rows) > 20


@pytest.mark.parametrize(
    "data, match",
    [
        ([], "has no rows"),
        (pd.DataFrame({"question": ["x"], "expected": ["y"]}), "no 'prompt' column.*question"),
        ([{"prompt": "x"}], "Row 0 has no 'expected'"),
        ([{"prompt": "x", "expected": "y"}, {"expected": "z"}], "Row 1 has no 'prompt'"),
        ([{"prompt": "  ", "expected": "y"}], "prompt is empty"),
        ([{"prompt": [{"role": "bot", "content": "x"}], "expected": "y"}], "neither text nor"),
        ([{"messages": [{"role": "user", "content": "x"}]}], "does not end with an assistant"),
        ("no/such/file.jsonl", "is not a file"),
        (42, "not evaluation data"),
    ],
)
def test_bad_data_is_refused_with_what_to_do(data, match):
    with pytest.raises(InvalidSetting, match=match) as e:
        examples(data)
    assert e.value.fix


def test_bad_files_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("prompt,expected\n")
    (tmp_path / "b.jsonl").write_text('{"prompt": "x", "expected": "y"}\nnot json\n')
    (tmp_path / "c.csv").write_text("question,answer\nx,y\n")
    for name, match in [
        ("a.txt", "neither .jsonl nor .csv"),
        ("b.jsonl", "Line 2"),
        ("c.csv", "no 'prompt' column"),
    ]:
        with pytest.raises(InvalidSetting, match=match):
            examples(tmp_path / name)


def test_a_scorer_without_expected_needs_no_expected_column():
    assert examples([{"prompt": "Give JSON"}], needs_expected=False).rows[0].expected is None


# ---------------------------------------------------------------- evaluate on the fake engine
# The fake always answers "Paris is the capital of France.\n".


def test_evaluate_scores_each_row_and_summarizes(fake):
    r = evaluate(fake(), CAPITALS, "contains", max_new_tokens=16)
    assert list(r.rows.score) == [1.0, 0.0] and (r.score, r.n, r.failed) == (0.5, 2, 0)
    assert r.interval == "wilson" and r.low < 0.5 < r.high
    assert (r.scorer, r.data, r.scheme) == ("contains", "a list", "fake")
    assert list(r.rows.reply) == ["Paris is the capital of France.\n"] * 2
    assert (r.rows.ttft_s > 0).all() and (r.rows.finish_reason == "stop").all()
    assert r.summary.task_score.iloc[0] == 0.5 and r.summary.task_n.iloc[0] == 2
    text = str(r)
    assert "contains on a list" in text and "50.0 % of 2 examples" in text and "Wilson" in text


def test_a_list_of_expected_values_means_any_of_them(fake):
    r = evaluate(fake(), [{"prompt": "Capital?", "expected": ["Rome", "Paris"]}], "contains")
    assert r.score == 1.0


def test_rescore_scores_the_same_replies_another_way_without_generating(fake):
    m = fake()
    r = evaluate(m, CAPITALS, "contains")
    calls = len(m.engine.counts)
    again = r.rescore(lambda reply, expected: len(reply) / 100)
    assert len(m.engine.counts) == calls and again.interval == "bootstrap"
    assert again.score == pytest.approx(len("Paris is the capital of France.\n") / 100)
    assert list(again.rows.reply) == list(r.rows.reply)
    json_replies = evaluate(m, [{"prompt": "Give JSON"}], "valid_json")
    with pytest.raises(InvalidSetting, match="Row 0 has no expected value for 'contains'"):
        json_replies.rescore("contains")


def test_n_takes_the_first_rows_and_the_scorer_may_stop_a_reply_early(fake):
    m = fake(script=ENDLESS, delay=0.005)  # would run to max_new_tokens
    r = evaluate(m, "house-format-heldout", "house_format", n=3, max_new_tokens=40)
    assert r.n == 3 and r.score == 0.0
    assert (r.rows.new_tokens < 40).all() and (r.rows.finish_reason == "stopped").all()


def test_a_row_that_cannot_be_generated_says_why_and_the_rest_are_scored(fake):
    long = {"prompt": " ".join(["word"] * 40), "expected": "Paris"}
    r = evaluate(fake(context_length=40), [*CAPITALS, long], "contains", max_new_tokens=8)
    assert (r.n, r.failed) == (2, 1) and math.isnan(r.rows.score.iloc[2])
    assert "longer than" in r.rows.error.iloc[2] or "context" in r.rows.error.iloc[2]
    assert "1 examples failed" in str(r)


def test_bad_scorer_results_and_bad_expected_values_are_named(fake):
    with pytest.raises(InvalidSetting, match="returned 2 for row 0"):
        evaluate(fake(), CAPITALS, lambda reply, expected: 2)
    with pytest.raises(InvalidSetting, match="Row 1 cannot be scored by 'number'"):
        evaluate(
            fake(), [{"prompt": "x", "expected": 3}, {"prompt": "y", "expected": "?"}], "number"
        )
    with pytest.raises(InvalidSetting, match="Unknown scorer"):
        evaluate(fake(), CAPITALS, "exactly")
    with pytest.raises(InvalidSetting, match="not a model to evaluate"):
        evaluate("default", CAPITALS, "contains")


def test_a_broken_model_raises_when_no_row_can_be_generated(fake):
    with pytest.raises(LlamalabError, match="No example of a list could be generated"):
        evaluate(fake(context_length=4), CAPITALS, "contains", max_new_tokens=8)


def test_compare_fills_the_task_columns_per_scheme():
    df = compare(
        "default",
        schemes=["bf16", "nf4"],
        prompts=["Hi"],
        max_new_tokens=4,
        quality=False,
        load=Loader(fail={"nf4"}),
        evaluation=(CAPITALS, "contains"),
    )
    ok = df[df.error.isna()].iloc[0]
    assert (ok.task, ok.task_score, ok.task_n) == ("contains on a list", 0.5, 2)
    assert ok.task_score_low < 0.5 < ok.task_score_high and ok.task_s > 0
    assert llamalab.metric("task_score").label == "task score"
    s = llamalab.summarize(df)
    assert s.task_score.iloc[0] == 0.5 and pd.isna(s.task_score.iloc[1])


def test_compare_checks_the_task_before_anything_loads():
    loader = Loader()
    with pytest.raises(InvalidSetting, match="Row 0 has no 'expected'"):
        compare("default", ["bf16"], ["Hi"], load=loader, evaluation=([{"prompt": "x"}], "exact"))
    with pytest.raises(InvalidSetting, match="not a task"):
        compare("default", ["bf16"], ["Hi"], load=loader, evaluation="contains")
    assert loader.loaded == []


def test_a_stop_event_ends_the_evaluation_between_examples(fake):
    import threading

    stop = threading.Event()
    task = llamalab.Evaluator(CAPITALS, "contains")
    first = task(fake(), on_row=lambda row: stop.set(), stop_event=stop)
    assert first.n == 1 and len(first.rows) == 1
    with pytest.raises(LlamalabError, match="stopped before the first one"):
        task(fake(), stop_event=stop)
