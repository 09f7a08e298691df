"""The checklist as questions (catalog/checklist.toml → llamalab.open_or_closed), the limitations
lab's bundled tasks, and a served model's request shown without sending it (request_preview):
fast, no model, no server."""

from __future__ import annotations

import pytest

import llamalab
from llamalab.core.errors import InvalidSetting
from llamalab.course.solutions import landscape

NOTHING_FORCES = {
    "data_in_house": "no",
    "offline": "no",
    "customization": "prompt",
    "independence": "no",
    "frontier_capability": "no",
    "run_servers": "yes",
}


def test_questions_are_data_with_answers_that_point_somewhere():
    qs = llamalab.checklist()
    ids = [q.id for q in qs]
    assert ids[-1] == "tokens_per_month" and len(set(ids)) == len(ids)
    assert {"data_in_house", "offline", "customization", "independence"} <= set(ids)
    for q in qs:
        assert q.asks.endswith("?") and q.why
        assert q.to_dict()["answers"]


@pytest.mark.parametrize(
    "need, cost_leans",
    [
        ({"data_in_house": "yes"}, "leans closed"),  # the hosted open model is ruled out too
        ({"offline": "yes"}, "leans closed"),
        ({"customization": "weights"}, "leans open"),  # the same open model, hosted, is cheapest
        ({"independence": "required"}, "leans open"),
    ],
)
def test_a_need_a_closed_api_cannot_meet_decides_before_cost(need, cost_leans):
    # at 30 M tokens a month the closed API costs far less than a 2-GPU replica
    rec = llamalab.open_or_closed({**NOTHING_FORCES, **need, "tokens_per_month": 3e7})
    assert rec.choice == "open" and rec.acceptable == ("open",)
    ((question, answer),) = need.items()
    assert rec.reason(question).points == "requires open" and rec.reason(question).answer == answer
    assert rec.reason("tokens_per_month").points == cost_leans


def test_the_cost_reason_names_its_numbers_and_which_options_the_answers_leave():
    rec = llamalab.open_or_closed(
        {**NOTHING_FORCES, "data_in_house": "yes", "tokens_per_month": 3e8}
    )
    why = rec.reason("tokens_per_month").why
    r = rec.cost
    assert f"${r.cost('api', 3e8):,.0f}" in why and f"${r.cost('self-hosted', 3e8):,.0f}" in why
    assert "left out by your answers" in why  # the hosted open model sends data out
    assert rec.reason("tokens_per_month").answer == "3e+08"


def test_with_nothing_forcing_cost_alone_leans_and_preferences_can_cancel_it():
    cheap_api = llamalab.open_or_closed(
        {**NOTHING_FORCES, "run_servers": "no", "tokens_per_month": 3e7}, api="gpt-4o-mini"
    )
    # no self-hosting: the API (gpt-4o-mini) vs the same open model hosted by a provider
    why = cheap_api.reason("tokens_per_month").why
    assert "self-hosted (2× h100-80gb per replica) left out by your answers" in why
    leaning = {r.points for r in cheap_api.reasons}
    assert cheap_api.choice in ("open", "closed") and cheap_api.acceptable == (cheap_api.choice,)
    assert ("leans " + cheap_api.choice) in leaning
    other = "open" if cheap_api.choice == "closed" else "closed"
    key, value = (
        ("independence", "preferred") if other == "open" else ("frontier_capability", "yes")
    )
    mixed = llamalab.open_or_closed(
        {**NOTHING_FORCES, "run_servers": "no", key: value, "tokens_per_month": 3e7},
        api="gpt-4o-mini",
    )
    assert mixed.choice == "either" and mixed.acceptable == ("open", "closed")


def test_a_tie_within_the_assumptions_leans_nowhere():
    r = llamalab.cost_at_scale("llama-3.1-70b", "int8", "h100-80gb", "gpt-4o", tokens_per_month=[1])
    volume = r.replica_usd_per_month / r.api_usd_per_token  # one replica costs what the API does
    # without the hosted option (hosted=None, passed on to cost_at_scale): API vs one replica
    rec = llamalab.open_or_closed({**NOTHING_FORCES, "tokens_per_month": volume}, hosted=None)
    assert rec.reason("tokens_per_month").points == "neutral" and rec.choice == "either"
    assert "a tie" in rec.reason("tokens_per_month").why


def test_unanswered_and_unsure_questions_are_listed_to_find_out():
    rec = llamalab.open_or_closed({"data_in_house": "unsure", "offline": ..., "independence": None})
    assert {"data_in_house", "offline", "independence", "tokens_per_month"} <= set(rec.to_find_out)
    assert rec.cost is None and "Provisional" in str(rec)
    assert llamalab.open_or_closed({"offline": True}).reason("offline").answer == "yes"


@pytest.mark.parametrize(
    "answers, says",
    [
        ({"data_in_hous": "yes"}, "data_in_house"),  # a typo: the close match is named
        ({"offline": "maybe"}, "'yes', 'no', 'unsure'"),
        ({"tokens_per_month": "lots"}, "not a number"),
        ({"tokens_per_month": -5}, "not a number"),
        (["yes"], "not a dict"),
    ],
)
def test_wrong_answers_are_refused_with_what_is_taken(answers, says):
    with pytest.raises(InvalidSetting, match=says):
        llamalab.open_or_closed(answers)


def test_exercise_7_accepts_the_scenario_and_refuses_the_cost_only_answer():
    ex = llamalab.course.exercises("01")
    right = ex.check(7, ("open", dict(landscape.HOSPITAL)))
    assert right.right and "requires open" in right.message
    closed = ex.check(7, ("closed", dict(landscape.HOSPITAL)))
    assert not closed.right and "leans closed" in closed.message  # cheaper, but ruled out
    wrong_facts = ex.check(7, ("open", {**landscape.HOSPITAL, "data_in_house": "no"}))
    assert not wrong_facts.right and "data_in_house" in wrong_facts.message
    assert "'no'" not in wrong_facts.message.split("do not match")[1]  # a hint, not the value
    assert not ex.check(7, "open").right  # not the pair asked for


@pytest.mark.parametrize("name", ["known-answers", "format-following", "arithmetic"])
def test_the_limitations_lab_tasks_are_bundled_and_checked(name):
    scorer = {"arithmetic": "number"}.get(name, "regex")
    task = llamalab.Evaluator(name, scorer)
    assert len(task.examples.rows) == 12 and task.examples.source == name


def test_the_format_patterns_tell_a_compliant_reply_from_a_chatty_one():
    rows = llamalab.Evaluator("format-following", "regex").examples.rows
    by_prompt = {r.prompt.split("?")[0].split(".")[0]: r.expected for r in rows}
    s = llamalab.scorers.scorer("regex")
    assert s("yes", by_prompt["Is the sun a star"]) and not s(
        "Yes, the sun is a star.", by_prompt["Is the sun a star"]
    )
    json_row = next(r.expected for r in rows if "JSON object" in r.prompt)
    assert s('{"city": "Rome"}', json_row) and not s('Sure! {"city": "Rome"}', json_row)


# ---- a request shown, not sent -------------------------------------------------------------------


def test_the_same_body_goes_to_llama_cpp_ollama_and_a_cloud_url(monkeypatch):
    monkeypatch.setenv("LLAMALAB_TEST_KEY", "sk-secret-value-123")
    local = llamalab.request_preview("http://127.0.0.1:8080", "smol", "Hi", max_new_tokens=8)
    ollama = llamalab.request_preview("http://localhost:11434/v1", "smol", "Hi", max_new_tokens=8)
    cloud = llamalab.request_preview(
        "https://api.openai.com", "gpt-4o", "Hi", "LLAMALAB_TEST_KEY", max_new_tokens=8
    )
    assert local.url == "http://127.0.0.1:8080/v1/chat/completions"
    assert ollama.url == "http://localhost:11434/v1/chat/completions"
    assert cloud.url == "https://api.openai.com/v1/chat/completions"
    strip = lambda p: {k: v for k, v in p.body.items() if k != "model"}
    assert strip(local) == strip(ollama) == strip(cloud)
    assert local.body["messages"] == [{"role": "user", "content": "Hi"}]
    assert local.body["max_tokens"] == 8 and local.body["stream"] is True
    assert "Authorization" not in local.headers
    assert "sk-secret" not in str(cloud) and "sk-secret" not in repr(cloud.to_dict())
    assert "$LLAMALAB_TEST_KEY, set" in cloud.headers["Authorization"]


def test_a_missing_key_is_said_not_raised_and_ollama_native_has_its_own_body(monkeypatch):
    monkeypatch.delenv("LLAMALAB_TEST_KEY", raising=False)
    p = llamalab.request_preview("https://api.together.xyz/v1", "m", "Hi", "LLAMALAB_TEST_KEY")
    assert "NOT SET" in p.headers["Authorization"]
    native = llamalab.request_preview("http://localhost:11434", "smol", "Hi", api="ollama")
    assert native.url == "http://localhost:11434/api/chat"
    assert native.body["options"]["num_predict"] == 128 and "max_tokens" not in native.body


def test_extra_fields_follow_the_server_guessed_from_the_host_only():
    exact = dict(max_new_tokens=4, min_new_tokens=4)
    with pytest.warns(UserWarning, match="ignore_eos"):
        generic = llamalab.request_preview("http://127.0.0.1:9", "m", "Hi", **exact)
    assert "ignore_eos" not in generic.body  # an unknown server: only OpenAI's fields, nothing sent
    cpp = llamalab.request_preview("http://127.0.0.1:9", "m", "Hi", server="llama.cpp", **exact)
    assert cpp.body["ignore_eos"] is True


def test_a_connected_models_preview_redacts_the_key_it_holds(monkeypatch):
    from llamalab.engines.openai import OpenAIEngine

    engine = OpenAIEngine(
        "http://127.0.0.1:9", "smol", key=lambda: "server-key-xyz", server="llama.cpp"
    )
    p = engine.request_preview("Hi")
    assert "server-key-xyz" not in str(p) and "redacted" in p.headers["Authorization"]
    assert engine.headers()["Authorization"] == "Bearer server-key-xyz"  # what a real request sends


def test_an_in_process_model_has_no_request_to_show(fake):
    with pytest.raises(InvalidSetting, match="sends no HTTP request"):
        fake().request_preview("Hi")
