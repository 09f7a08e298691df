"""The EvaluationPanel widget against the fake engine (tests/fakes.py: it always answers "Paris is
the capital of France."): your own rows or a bundled task, the score and interval, every reply, Stop
after the current example, and bad rows named inline before anything is generated. Fast."""

import html
import json
import threading

from fakes import ENDLESS

from llamalab.widgets import EvaluationPanel
from llamalab.widgets.evaluation import OWN

WAIT = 20
ROWS = [
    {"prompt": "Capital of France?", "expected": "Paris"},
    {"prompt": "Capital of Italy?", "expected": "Rome"},
]


def own(panel: EvaluationPanel, rows) -> None:
    panel.data.value = OWN
    panel.own.value = "\n".join(json.dumps(r) for r in rows)


def test_your_own_rows_are_scored_with_the_interval_and_every_reply(fake):
    panel = EvaluationPanel(fake(), scorer="contains")
    own(panel, ROWS)
    assert panel.own.layout.display is None  # the text box shows only for your own rows
    panel.run_button.click()
    assert panel.wait(WAIT) and panel.errors.message == "", panel.errors.message
    e = panel.last
    assert e.n == 2 and e.score == 0.5 and list(e.rows.score) == [1.0, 0.0]
    assert html.escape(str(e)) in panel.result.value and "stopped" not in panel.result.value
    assert panel.table.value.count("<tr>") == 3 and "Paris is the capital" in panel.table.value
    assert "2 of 2 rows" in panel.progress.value and panel.run_button.disabled is False


def test_a_bundled_task_runs_its_first_n_examples(fake):
    panel = EvaluationPanel(fake(), data="known-answers", scorer="contains", n=3)
    assert panel.own.layout.display == "none"
    panel.run(wait=True)
    assert panel.errors.message == "" and panel.last.n == 3 and len(panel.rows_done) == 3


def test_a_row_that_is_not_json_is_named_and_nothing_is_generated(fake):
    model = fake()
    panel = EvaluationPanel(model)
    panel.data.value = OWN
    panel.own.value = json.dumps(ROWS[0]) + "\n{prompt: Rome}"
    panel.run(wait=True)
    assert panel.errors.message.startswith("Line 2 of your rows is not JSON")
    assert panel.task is None and panel.last is None and model.engine.counts == []


def test_a_row_without_a_prompt_shows_the_shape_to_write(fake):
    panel = EvaluationPanel(fake())
    own(panel, [{"question": "Capital of Peru?", "expected": "Lima"}])
    panel.run(wait=True)
    assert "prompt" in panel.errors.message and panel.errors.fix and panel.last is None


def test_stop_ends_after_the_current_example_with_the_rows_done(fake):
    first_row = threading.Event()
    model = fake(script=ENDLESS, delay=0.02, hook=lambda n: n >= 4 and first_row.set())
    panel = EvaluationPanel(model, scorer="contains", max_new_tokens=8)
    own(panel, ROWS * 6)
    panel.run()
    assert first_row.wait(WAIT) and panel.stop_button.disabled is False
    panel.stop_button.click()
    assert panel.wait(WAIT) and panel.errors.message == ""
    assert 1 <= panel.last.n < 12 and "(stopped" in panel.result.value
    assert panel.stop_button.disabled is True and panel.run_button.disabled is False
